"""Third-party MQTT clients through the relay (spec notes §5, §9 items 19-22): Debian's
paho-mqtt 1.6.1 (MQTTv311 and MQTTv5) and mosquitto-clients 2.0.11 (mosquitto_pub /
mosquitto_sub, -V mqttv311 | mqttv5) exchange Records with STOMP, UDS and raw MQTT
endpoints and with each other, as Agents and as Controllers, byte-identical (the PUBLISH
payload is the Record), each side getting the reply address the way its version carries
it; plus one 1 MiB Record across paho, mosquitto, STOMP and UDS.

The mosquitto-clients helpers are in mosq.py."""

import os
import queue
import shutil

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import uspwire as w
from mosq import MosqSub, mosq_pub, reply_topic_of

BIG = 1024 * 1024
WAIT = 10.0

pytestmark = pytest.mark.skipif(not shutil.which("mosquitto_sub"),
                                reason="mosquitto-clients not installed")


def payload_bytes(tag):
    """A payload holding every byte value, NULs and a tag."""
    return bytes(range(256)) + b"\x00\x00" + tag.encode()


# ----------------------------------------------------------------- paho

class PahoMsg:
    def __init__(self, msg, v5):
        self.topic = msg.topic
        self.payload = bytes(msg.payload)
        self.qos = msg.qos
        props = getattr(msg, "properties", None) if v5 else None
        self.response_topic = getattr(props, "ResponseTopic", None) if props else None
        self.content_type = getattr(props, "ContentType", None) if props else None
        self.reply = reply_topic_of(self.topic, self.response_topic, v5)


class Paho:
    """A paho client as endpoint EID. v5: empty client id (the relay assigns one),
    usp-endpoint-id, Request Response Information 1, subscribed to the CONNACK
    subscribe-topic. 3.1.1: client id = EID, subscribed to "<topic>/#" (obuspa style)
    with TOPIC = usp/agents/<EID> unless given."""

    def __init__(self, relay, eid, *, v5=True, topic=None, qos=1):
        self.eid, self.v5 = eid, v5
        self.q = queue.Queue()
        self.events = queue.Queue()
        if v5:
            self.c = paho.Client(client_id="", protocol=paho.MQTTv5)
        else:
            self.c = paho.Client(client_id=eid, protocol=paho.MQTTv311, clean_session=True)
        self.c.on_connect = lambda c, u, flags, rc, props=None: self.events.put(
            ("connack", rc, props))
        self.c.on_subscribe = lambda c, u, mid, *rest: self.events.put(("suback", mid, rest))
        self.c.on_message = lambda c, u, msg: self.q.put(PahoMsg(msg, v5))
        relay.track(self)
        if v5:
            cp = Properties(PacketTypes.CONNECT)
            cp.UserProperty = ("usp-endpoint-id", eid)
            cp.RequestResponseInformation = 1
            self.c.connect("127.0.0.1", relay.mqtt_port, keepalive=30, clean_start=True,
                           properties=cp)
        else:
            self.c.connect("127.0.0.1", relay.mqtt_port, keepalive=30)
        self.c.loop_start()
        kind, rc, props = self.events.get(timeout=WAIT)
        assert kind == "connack" and rc == 0, (kind, rc)
        if v5:
            self.assigned = props.AssignedClientIdentifier
            users = dict(props.UserProperty)
            self.topic = users["subscribe-topic"]
            assert props.ResponseInformation == self.topic
            assert props.MaximumQoS == 1 and props.RetainAvailable == 0
            sub = self.topic
        else:
            self.topic = topic or "usp/agents/" + eid
            sub = self.topic + "/#"
        _, mid = self.c.subscribe(sub, qos=qos)
        kind, got_mid, rest = self.events.get(timeout=WAIT)
        assert kind == "suback" and got_mid == mid, (kind, got_mid, mid)
        granted = rest[0][0]
        assert int(getattr(granted, "value", granted)) == qos, rest

    def send(self, record, topic, qos=1):
        """Publish RECORD to TOPIC with our reply address (v5 Response Topic + Content
        Type usp.msg; 3.1.1 /reply-to= suffix) and wait until it is acknowledged."""
        if self.v5:
            pp = Properties(PacketTypes.PUBLISH)
            pp.ResponseTopic = self.topic
            pp.ContentType = "usp.msg"
            info = self.c.publish(topic, record, qos=qos, properties=pp)
        else:
            info = self.c.publish(topic + w.reply_to_suffix(self.topic), record, qos=qos)
        info.wait_for_publish(WAIT)
        assert info.is_published()

    def recv(self, timeout=WAIT):
        return self.q.get(timeout=timeout)

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


# ----------------------------------------------------------------- peers

class Peers:
    """A STOMP, a UDS, a raw MQTT v5 and a raw MQTT 3.1.1 endpoint."""

    def __init__(self, relay):
        self.stomp = relay.stomp_endpoint("self::peer-stomp")
        self.uds = relay.uds_endpoint("self::peer-uds")
        self.m5 = relay.mqtt_endpoint("self::peer-m5")
        self.m4 = relay.mqtt_endpoint("os::peer-m4", level=4)
        self.all = [self.stomp, self.uds, self.m5, self.m4]

    @staticmethod
    def send(peer, record, topic):
        """PEER sends RECORD; an MQTT peer publishes it on TOPIC."""
        if isinstance(peer, w.MqttClient):
            peer.send_record(record, topic, qos=1)
        else:
            peer.send_record(record)

    @staticmethod
    def alias(peer):
        """The reply topic a third-party client is given for PEER: its own for MQTT
        peers, the relay's alias topic otherwise (both usp/endpoint/<EID> here)."""
        return w.mqtt_topic(peer.eid)


@pytest.mark.parametrize("v5", [True, False], ids=["v5", "v311"])
def test_paho_with_every_mtp(relay, v5):
    """paho as an endpoint: Records from STOMP, UDS and raw MQTT v5 / 3.1.1 peers arrive
    byte-identical with the right reply address; paho's answers, published to that
    address with to_id = the peer, arrive byte-identical."""
    eid = "self::paho5" if v5 else "os::paho4"
    p = Paho(relay, eid, v5=v5)
    peers = Peers(relay)
    for i, peer in enumerate(peers.all):
        r = w.session_context(eid, peer.eid, [payload_bytes("to paho %d" % i)],
                              sequence_id=i + 1)
        Peers.send(peer, r, p.topic)
        m = p.recv()
        assert m.payload == r
        assert m.reply == Peers.alias(peer)
        assert m.qos == 1
        if v5:
            assert m.topic == p.topic and m.content_type == "usp.msg"
        back = w.no_session(peer.eid, eid, payload_bytes("from paho %d" % i))
        p.send(back, m.reply)
        assert peer.recv_record() == back


@pytest.mark.parametrize("v5", [True, False], ids=["v5", "v311"])
def test_mosquitto_with_every_mtp(relay, tmp_path, v5):
    """mosquitto_sub receives from STOMP, UDS and raw MQTT peers; mosquitto_pub then
    answers each at the reply address it was given."""
    eid = "self::mosq5" if v5 else "os::mosq4"
    peers = Peers(relay)
    sub = MosqSub(relay, eid, len(peers.all), v5=v5)
    sent = []
    for i, peer in enumerate(peers.all):
        r = w.no_session(eid, peer.eid, payload_bytes("to mosquitto %d" % i))
        Peers.send(peer, r, sub.topic)
        sent.append(r)
        topic, qos, reply, ct, payload = sub.recv()
        assert payload == r
        assert reply == Peers.alias(peer)
        assert qos == 1
        if v5:
            assert ct == "usp.msg" and topic == sub.topic
    sub.wait()
    for i, peer in enumerate(peers.all):
        back = w.no_session(peer.eid, eid, payload_bytes("from mosquitto %d" % i))
        mosq_pub(relay, tmp_path, eid, Peers.alias(peer), back, v5=v5, reply_to=sub.topic)
        assert peer.recv_record() == back


@pytest.mark.parametrize("agent,ctrl", [("paho4", "mosq5"), ("mosq4", "paho5"),
                                        ("paho5", "mosq4"), ("mosq5", "paho4")])
def test_agent_controller_pairs(relay, tmp_path, agent, ctrl):
    """Library against library, each as Agent and as Controller: the Controller sends a
    request to the Agent's topic with its reply address, the Agent answers at the
    address it received."""
    a_eid = "os::%s-agent" % agent
    c_eid = "self::%s-ctrl" % ctrl
    a_v5, c_v5 = agent.endswith("5"), ctrl.endswith("5")
    req = w.no_session(a_eid, c_eid, payload_bytes("Get"))
    resp = w.no_session(c_eid, a_eid, payload_bytes("GetResp"))

    if agent.startswith("paho"):
        a = Paho(relay, a_eid, v5=a_v5)
    else:
        a = MosqSub(relay, a_eid, 1, v5=a_v5)
    # Controller -> Agent.
    if ctrl.startswith("paho"):
        c = Paho(relay, c_eid, v5=c_v5)
        c_topic = c.topic
        c.send(req, a.topic)
    else:
        c_topic = w.mqtt_topic(c_eid) if c_v5 else "usp/controllers/" + c_eid
        mosq_pub(relay, tmp_path, c_eid, a.topic, req, v5=c_v5, reply_to=c_topic)
    if agent.startswith("paho"):
        m = a.recv()
        got, reply = m.payload, m.reply
    else:
        _, _, reply, _, got = a.recv()
        a.wait()
    assert got == req
    assert reply == c_topic
    # Agent -> Controller at the reply address.
    if ctrl.startswith("mosq"):
        c = MosqSub(relay, c_eid, 1, v5=c_v5, topic=c_topic)
    if agent.startswith("paho"):
        a.send(resp, reply)
    else:
        mosq_pub(relay, tmp_path, a_eid, reply, resp, v5=a_v5, reply_to=a.topic)
    if ctrl.startswith("paho"):
        m = c.recv()
        assert m.payload == resp and m.reply == a.topic
    else:
        _, _, creply, _, got = c.recv()
        c.wait()
        assert got == resp and creply == a.topic


def test_one_mib_record(relay, tmp_path):
    """A 1 MiB Record: STOMP -> paho v5 -> mosquitto_sub 3.1.1; mosquitto_pub v5 -> UDS;
    UDS -> paho 3.1.1, all byte-identical."""
    big = os.urandom(BIG)
    s = relay.stomp_endpoint("self::big-stomp")
    u = relay.uds_endpoint("self::big-uds")
    p5 = Paho(relay, "self::big-paho5")
    p4 = Paho(relay, "os::big-paho4", v5=False)
    sub = MosqSub(relay, "os::big-mosq", 1, v5=False)

    r = w.no_session("self::big-paho5", "self::big-stomp", big)
    s.send_record(r)
    assert p5.recv().payload == r
    r = w.no_session("os::big-mosq", "self::big-paho5", big)
    p5.send(r, sub.topic)
    topic, _, reply, _, got = sub.recv()
    assert got == r and reply == p5.topic
    sub.wait()
    r = w.no_session("self::big-uds", "os::big-mosq", big)
    mosq_pub(relay, tmp_path, "os::big-mosq", "usp/endpoint/self::big-uds", r, v5=True)
    assert u.recv_record() == r
    r = w.no_session("os::big-paho4", "self::big-uds", big)
    u.send_record(r)
    m = p4.recv()
    assert m.payload == r and m.reply == "usp/endpoint/self::big-uds"
