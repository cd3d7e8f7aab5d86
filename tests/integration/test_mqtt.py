"""The relay's MQTT 3.1.1 / 5.0 server, driven with uspwire's raw MQTT client (spec notes §5
and §9 items 19-22): CONNACK contents, identity (usp-endpoint-id, client id, first Record),
reply-to in both versions, QoS 0/1 (and 3.1.1 QoS 2 in), Receive Maximum, keepalive,
client-id takeover, the subscribe ACL, credentials, every v5 refusal and its reason code,
hostile input followed by a check that the relay still serves others, and delivery by
topic for an unknown to_id. Third-party clients (paho, mosquitto) are in
test_mqtt_clients.py."""

import threading
import time

import pytest

import uspwire as w
from uspwire import (MQTT_CONNACK, MQTT_DISCONNECT, MQTT_PUBACK, MQTT_PUBCOMP,
                     MQTT_PUBREC, MQTT_PUBREL)

MAX_RECORD = 65536
MAX_UNIDENTIFIED = 2048
DEFAULT_MAX_RECORD = 5 * 1024 * 1024

CTRL5 = "self::ctrl-v5"
AGENT = "os::00256D-agent1"
AGENT_TOPIC = "usp/agents/" + AGENT


# ----------------------------------------------------------------- CONNACK, identity

def test_v5_connack_properties(start_relay):
    """R-MQTT.12/44, spec notes §9.19: assigned client id for an empty one, the
    subscribe-topic user property, Response Information only when asked for, and the
    capabilities the relay has (QoS 1, no retain, no topic aliases, wildcards yes, no
    shared subscriptions or subscription ids), its Maximum Packet Size and the configured
    Receive Maximum."""
    relay = start_relay(mqtt={"receive_maximum": 7}, limits={"max_record_size": 100000})
    a = relay.mqtt_client()
    p = a.connect("", eid="self::v5-a", request_response_info=True)
    assert p.session_present == 0
    cid = p.props[w.P_ASSIGNED_CLIENT_ID]
    assert cid
    assert p.user_props == [("subscribe-topic", "usp/endpoint/self::v5-a")]
    assert p.props[w.P_RESPONSE_INFO] == "usp/endpoint/self::v5-a"
    assert p.props[w.P_MAX_QOS] == 1
    assert p.props[w.P_RETAIN_AVAILABLE] == 0
    assert p.props[w.P_TOPIC_ALIAS_MAX] == 0
    assert p.props[w.P_WILDCARD_AVAILABLE] == 1
    assert p.props[w.P_SHARED_AVAILABLE] == 0
    assert p.props[w.P_SUB_ID_AVAILABLE] == 0
    assert p.props[w.P_RECEIVE_MAXIMUM] == 7
    assert 100000 < p.props[w.P_MAX_PACKET_SIZE] <= 100000 + 65536
    assert w.P_SERVER_KEEP_ALIVE not in p.props     # the client's own keep alive stands

    b = relay.mqtt_client()
    p = b.connect("", eid="self::v5-b")
    assert w.P_RESPONSE_INFO not in p.props, "Response Information without the request"
    assert p.user_prop("subscribe-topic") == "usp/endpoint/self::v5-b"
    assert p.props[w.P_ASSIGNED_CLIENT_ID] not in ("", cid), "assigned ids must be unique"

    c = relay.mqtt_client()
    p = c.connect("my-client", eid="self::v5-c")
    assert w.P_ASSIGNED_CLIENT_ID not in p.props
    relay.wait_log(r'event=endpoint_bound conn=\d+ mtp=mqtt .*eid="self::v5-c"')


def test_v5_defaults_and_template(start_relay):
    """Receive Maximum defaults to 64 (in CONNACK: absent would mean 65535); a custom
    subscribe_topic_template shapes subscribe-topic, Response Information and the alias
    topic."""
    relay = start_relay(mqtt={"subscribe_topic_template": "usp/v1/{eid}/in"})
    a = relay.mqtt_client()
    p = a.connect("", eid="self::tpl", request_response_info=True)
    assert p.props[w.P_RECEIVE_MAXIMUM] == 64
    assert p.user_prop("subscribe-topic") == "usp/v1/self::tpl/in"
    assert p.props[w.P_RESPONSE_INFO] == "usp/v1/self::tpl/in"
    assert a.subscribe(a.topic) == [1]
    s = relay.stomp_endpoint("self::tpl-stomp")
    r = w.no_session("self::tpl", "self::tpl-stomp", b"templated")
    s.send_record(r)
    m = a.recv_publish()
    assert m.topic == "usp/v1/self::tpl/in" and m.payload == r
    assert m.props[w.P_RESPONSE_TOPIC] == "usp/v1/self::tpl-stomp/in"


def test_v5_identity_from_client_id_or_first_record(relay):
    """Without usp-endpoint-id a v5 client id that is an EID names the endpoint; one that
    is not leaves it unknown until the first Record's from_id; an invalid
    usp-endpoint-id is refused with 0x85."""
    s = relay.stomp_endpoint("self::idp-s")
    a = relay.mqtt_client()
    a.connect("self::idp-a")
    assert a.subscribe("usp/endpoint/self::idp-a") == [1]
    r = w.no_session("self::idp-a", "self::idp-s", b"to the client id")
    s.send_record(r)
    assert a.recv_record() == r

    b = relay.mqtt_client()
    b.connect("not-an-eid")
    assert b.subscribe("usp/endpoint/self::idp-b") == [1]
    hello = w.no_session("self::idp-s", "self::idp-b", b"first")
    assert b.send_record(hello, qos=1).reason == 0
    assert s.recv_record() == hello
    relay.wait_log(r'event=endpoint_bound conn=\d+ mtp=mqtt .*eid="self::idp-b"')
    r = w.no_session("self::idp-b", "self::idp-s", b"back")
    s.send_record(r)
    assert b.recv_record() == r

    bad = relay.mqtt_client()
    bad.connect("", eid="no-colons", expect=0x85)
    bad.expect_close()


def test_v311_identity_from_client_id(relay):
    """3.1.1: client id = EID binds the endpoint at CONNECT (a Record for it routes before
    it ever published); the CONNACK is the plain 2-byte one."""
    a = relay.mqtt_client(level=4)
    p = a.connect(AGENT)
    assert p.body == b"\x00\x00"
    relay.wait_log(r'event=endpoint_bound conn=\d+ mtp=mqtt .*eid="%s"' % AGENT)
    assert a.subscribe(AGENT_TOPIC + "/#") == [1]
    s = relay.stomp_endpoint("self::stomp-ctrl")
    r = w.no_session(AGENT, "self::stomp-ctrl", b"get")
    s.send_record(r)
    m = a.recv_publish()
    assert m.payload == r
    assert m.topic == AGENT_TOPIC + "/reply-to=usp%2Fendpoint%2Fself::stomp-ctrl"


def test_v311_empty_client_id_needs_clean_session(relay):
    a = relay.mqtt_client(level=4)
    a.connect("", clean=False, expect=0x02)
    a.expect_close()
    b = relay.mqtt_client(level=4)
    b.connect("", clean=True)
    b.ping()


@pytest.mark.parametrize("level,expect,body", [(3, 0x01, b"\x00\x01"), (6, 0x84, None)])
def test_unsupported_protocol_level(relay, level, expect, body):
    """Level 3 (MQTT 3.1) gets the 3.1.1 CONNACK 0x01, a level above 5 the v5 one with
    0x84; either way the connection is closed."""
    c = relay.mqtt_client(level=5 if level > 5 else 4)
    pkt = bytearray(w.mqtt_connect_packet("self::lvl", level=4))
    pkt[8] = level    # fixed header (2) + "MQTT" string (6): the level byte
    c.send_raw(bytes(pkt))
    p = c.recv_packet()
    assert p.type == MQTT_CONNACK and p.reason == expect
    if body is not None:
        assert p.body == body
    c.expect_close()


# ----------------------------------------------------------------- obuspa-style 3.1.1

def test_obuspa_style_v311_agent(relay):
    """An obuspa-like 3.1.1 Agent (client id = EID, subscribed to "<topic>/#") and a v5
    Controller: each side receives the other's Records byte-identical with the reply
    address in the form its version uses (R-MQTT.22-26), and answering there reaches the
    sender. A STOMP controller reaches the Agent too."""
    ctrl = relay.mqtt_endpoint(CTRL5)
    agent = relay.mqtt_endpoint(AGENT, level=4, subscribe=False)
    assert agent.subscribe(AGENT_TOPIC + "/#") == [1]

    # Agent -> Controller: controller topic + /reply-to=<agent topic, '/' as %2F>.
    notify = w.no_session(CTRL5, AGENT, b"Boot! event")
    assert agent.send_record(notify, ctrl.topic, reply_to=AGENT_TOPIC, qos=1).pid
    m = ctrl.recv_publish()
    assert m.payload == notify
    assert m.topic == ctrl.topic
    assert m.props[w.P_RESPONSE_TOPIC] == AGENT_TOPIC
    assert m.props[w.P_CONTENT_TYPE] == "usp.msg"
    assert m.qos == 1

    # Controller -> Agent at the Response Topic it was given.
    get = w.no_session(AGENT, CTRL5, b"Get Device.")
    assert ctrl.send_record(get, m.props[w.P_RESPONSE_TOPIC], qos=1).reason == 0
    m = agent.recv_publish()
    assert m.payload == get
    assert m.topic == AGENT_TOPIC + "/reply-to=usp%2Fendpoint%2F" + CTRL5
    assert m.qos == 1

    # Agent answers at the topic after the last /reply-to= (%2F -> /).
    reply_topic = m.topic.rsplit("/reply-to=", 1)[1].replace("%2F", "/")
    resp = w.no_session(CTRL5, AGENT, b"GetResp")
    agent.send_record(resp, reply_topic, reply_to=AGENT_TOPIC)
    assert ctrl.recv_record() == resp

    # A STOMP controller: the Agent sees the relay's alias topic for it.
    s = relay.stomp_endpoint("self::stomp-ctrl")
    r = w.no_session(AGENT, "self::stomp-ctrl", b"from stomp")
    s.send_record(r)
    m = agent.recv_publish()
    assert m.payload == r
    assert m.topic == AGENT_TOPIC + "/reply-to=usp%2Fendpoint%2Fself::stomp-ctrl"
    back = w.no_session("self::stomp-ctrl", AGENT, b"to stomp")
    agent.send_record(back, m.topic.rsplit("/reply-to=", 1)[1].replace("%2F", "/"),
                      reply_to=AGENT_TOPIC)
    assert s.recv_record() == back


def test_v311_client_id_not_eid_binds_from_connect_record(relay):
    """A 3.1.1 client whose client id is no EID: its MQTTConnectRecord names it (from_id),
    its subscribed_topic becomes its delivery topic, and a filter outside its topic space,
    taken on trust before the ID was known, is revoked once it is."""
    eid = "os::012345-dev1"
    topic = "usp/agents/" + eid
    ctrl = relay.mqtt_endpoint(CTRL5)
    a = relay.mqtt_client(level=4)
    a.connect("dev-1234")
    assert a.subscribe([topic + "/#", "usp/shared/other"]) == [1, 1]
    cr = w.mqtt_connect(CTRL5, eid, topic, version=0)
    assert a.send_record(cr, ctrl.topic, reply_to=topic, qos=1).pid
    m = ctrl.recv_publish()
    assert m.payload == cr
    assert w.decode_record(m.payload).subscribed_topic == topic
    assert m.props[w.P_RESPONSE_TOPIC] == topic
    relay.wait_log(r'event=endpoint_bound conn=\d+ mtp=mqtt .*eid="%s"' % eid)
    relay.wait_log(r'event=mqtt_subscription_revoked .*filter="usp/shared/other" reason=acl')

    u = relay.uds_endpoint("self::uds-ctrl")
    r = w.no_session(eid, "self::uds-ctrl", b"from uds")
    u.send_record(r)
    m = a.recv_publish()
    assert m.payload == r
    assert m.topic == topic + "/reply-to=usp%2Fendpoint%2Fself::uds-ctrl"

    # The revoked filter no longer catches Records for unknown IDs.
    mark = len(relay.log())
    ctrl.send_record(w.no_session("os::nobody", CTRL5, b"x"), "usp/shared/other", qos=1)
    relay.wait_log(r'eid="%s" reason=drop_no_route' % CTRL5, start=mark)
    a.expect_nothing(0.2)


# ----------------------------------------------------------------- Response Topic

def test_v5_response_topic_routes_back_to_any_mtp(relay):
    """A v5 receiver gets Content Type usp.msg and a Response Topic; publishing there
    with to_id = the sender reaches the sender whether it is on STOMP, UDS, MQTT v5 (its
    own Response Topic is passed on) or MQTT 3.1.1 (its /reply-to= topic is)."""
    rx = relay.mqtt_endpoint("self::rx")
    st = relay.stomp_endpoint("self::tx-stomp")
    ud = relay.uds_endpoint("self::tx-uds")
    m5 = relay.mqtt_endpoint("self::tx-v5")
    m4 = relay.mqtt_endpoint("os::tx-v311", level=4)
    m5_bare = relay.mqtt_endpoint("self::tx-v5-bare")
    senders = [
        (st, lambda r: st.send_record(r), "usp/endpoint/self::tx-stomp"),
        (ud, lambda r: ud.send_record(r), "usp/endpoint/self::tx-uds"),
        (m5, lambda r: m5.send_record(r, reply_to="usp/endpoint/self::tx-v5"),
         "usp/endpoint/self::tx-v5"),
        (m4, lambda r: m4.send_record(r, reply_to="usp/endpoint/os::tx-v311"),
         "usp/endpoint/os::tx-v311"),
        (m5_bare, lambda r: m5_bare.send_record(r, reply_to=""),
         "usp/endpoint/self::tx-v5-bare"),
    ]
    for i, (cl, send, expect_topic) in enumerate(senders):
        r = w.no_session("self::rx", cl.eid, b"req %d" % i)
        send(r)
        m = rx.recv_publish()
        assert m.payload == r
        assert m.props[w.P_CONTENT_TYPE] == "usp.msg"
        assert m.props[w.P_RESPONSE_TOPIC] == expect_topic
        back = w.no_session(cl.eid, "self::rx", b"resp %d" % i)
        assert rx.send_record(back, m.props[w.P_RESPONSE_TOPIC], qos=1).reason == 0
        assert cl.recv_record() == back


def test_v5_content_type(relay):
    """R-MQTT.27a: usp.msg, application/vnd.bbf.usp.msg and none pass; anything else is
    dropped (PUBACK with a failure code, session kept)."""
    rx = relay.mqtt_endpoint("self::ct-rx")
    tx = relay.mqtt_endpoint("self::ct-tx")
    for i, ct in enumerate(["usp.msg", w.USP_CONTENT_TYPE, ""]):
        r = w.no_session("self::ct-rx", "self::ct-tx", b"ct %d" % i)
        assert tx.send_record(r, qos=1, content_type=ct).reason == 0
        assert rx.recv_record() == r
    r = w.no_session("self::ct-rx", "self::ct-tx", b"text")
    assert tx.send_record(r, qos=1, content_type="text/plain").reason >= 0x80
    relay.wait_log(r'eid="self::ct-tx" reason=drop_bad_content_type')
    rx.expect_nothing(0.2)
    tx.ping()


# ----------------------------------------------------------------- QoS

def test_qos_both_ways(relay):
    """QoS 0 and 1 in (PUBACK: 0x00 delivered, 0x10 no route, 0x87 spoofed; 3.1.1 acks
    are bare) and out (the granted QoS: 0 without packet id, 1 with one)."""
    s = relay.stomp_endpoint("self::q-s")
    subs = {}
    for eid, level, qos in [("self::q50", 5, 0), ("self::q51", 5, 1),
                            ("os::q40", 4, 0), ("os::q41", 4, 1)]:
        subs[eid] = (relay.mqtt_endpoint(eid, level=level, qos=qos), qos)
    for eid, (c, qos) in subs.items():
        r = w.no_session(eid, "self::q-s", b"to %s" % eid.encode())
        s.send_record(r)
        m = c.recv_publish()
        assert m.payload == r and m.qos == qos and m.retain == 0 and m.dup == 0
        assert (m.pid != 0) == (qos == 1)
        for pub_qos in (0, 1):
            back = w.no_session("self::q-s", eid, b"qos %d" % pub_qos)
            ack = c.send_record(back, qos=pub_qos)
            if pub_qos:
                assert ack.type == MQTT_PUBACK and ack.reason == 0
                if c.level == 4:
                    assert ack.body == ack.pid.to_bytes(2, "big")
            assert s.recv_record() == back
    c5 = subs["self::q51"][0]
    assert c5.send_record(w.no_session("self::nobody", "self::q51"), qos=1).reason == 0x10
    assert c5.send_record(w.no_session("self::q-s", "self::q50"), qos=1).reason == 0x87
    relay.wait_log(r'eid="self::q51" reason=drop_spoofed')
    s.expect_nothing(0.2)


def test_outbound_qos_is_min_of_published_and_granted(relay):
    rx = relay.mqtt_endpoint("self::min-rx", qos=1)
    tx = relay.mqtt_endpoint("self::min-tx")
    r = w.no_session("self::min-rx", "self::min-tx", b"published at QoS 0")
    tx.send_record(r, qos=0)
    m = rx.recv_publish()
    assert m.payload == r
    assert m.qos == 0


def test_v311_qos2_inbound_exactly_once(relay):
    """3.1.1 QoS 2 in: PUBREC; a DUP resend before PUBREL is acknowledged again but not
    delivered twice; PUBREL -> PUBCOMP; then the packet id is free for a new message."""
    rx = relay.mqtt_endpoint("self::q2-rx")
    tx = relay.mqtt_endpoint("os::q2-tx", level=4)
    r = w.no_session("self::q2-rx", "os::q2-tx", b"exactly once")
    rec = tx.send_record(r, qos=2, pid=7)
    assert rec.type == MQTT_PUBREC and rec.pid == 7 and rec.body == b"\x00\x07"
    assert rx.recv_record() == r
    rec = tx.send_record(r, qos=2, pid=7, dup=True)
    assert rec.type == MQTT_PUBREC and rec.pid == 7
    rx.expect_nothing(0.3)
    tx.send_ack(MQTT_PUBREL, 7)
    comp = tx.recv_packet()
    assert comp.type == MQTT_PUBCOMP and comp.pid == 7
    r2 = w.no_session("self::q2-rx", "os::q2-tx", b"new message, same id")
    assert tx.send_record(r2, qos=2, pid=7).pid == 7
    assert rx.recv_record() == r2
    tx.send_ack(MQTT_PUBREL, 7)
    assert tx.recv_packet().type == MQTT_PUBCOMP


def test_v311_qos2_without_pubrel_is_bounded(relay):
    """A 3.1.1 client that never sends PUBREL cannot make the relay keep QoS 2 state
    without bound: it is closed after a bounded number of open exchanges."""
    rx = relay.mqtt_endpoint("self::q2b-rx")
    tx = relay.mqtt_endpoint("os::q2b-tx", level=4)
    n = 0
    with pytest.raises(w.Closed):
        for pid in range(1, 301):
            tx.send_record(w.no_session("self::q2b-rx", "os::q2b-tx", b"%d" % pid), qos=2,
                           pid=pid)
            n += 1
    assert n <= 256, "%d QoS 2 exchanges left open" % n
    relay.wait_log(r'eid="os::q2b-tx" reason=protocol_error')
    assert rx.recv_record() == w.no_session("self::q2b-rx", "os::q2b-tx", b"1")


def test_v5_qos2_refused(relay):
    rx = relay.mqtt_endpoint("self::q2v5-rx")
    tx = relay.mqtt_endpoint("self::q2v5-tx")
    tx.send_record(w.no_session("self::q2v5-rx", "self::q2v5-tx"), qos=2, wait=False)
    tx.expect_disconnect(0x9B)
    rx.expect_nothing(0.2)


def test_v5_retain_refused_v311_retain_delivered(relay):
    """Retain Available is 0: a v5 retained PUBLISH is a protocol error (0x9A); a 3.1.1
    one (which cannot be told) is delivered as a plain one and not kept for later
    subscribers."""
    rx = relay.mqtt_endpoint("self::ret-rx")
    v5 = relay.mqtt_endpoint("self::ret-v5")
    v5.send_record(w.no_session("self::ret-rx", "self::ret-v5"), retain=True)
    v5.expect_disconnect(0x9A)
    rx.expect_nothing(0.2)

    v4 = relay.mqtt_endpoint("os::ret-v4", level=4)
    r = w.no_session("self::ret-rx", "os::ret-v4", b"retained?")
    v4.send_record(r, retain=True, qos=1)
    m = rx.recv_publish()
    assert m.payload == r and m.retain == 0
    assert rx.unsubscribe([rx.topic]) == [0]
    assert rx.subscribe(rx.topic) == [1]
    rx.expect_nothing(0.2)


def test_v5_topic_alias_refused(relay):
    """Topic Alias Maximum is 0: any Topic Alias is a protocol error (0x94)."""
    tx = relay.mqtt_endpoint("self::alias")
    tx.send_record(w.no_session("self::x", "self::alias"), props=[(w.P_TOPIC_ALIAS, 1)])
    tx.expect_disconnect(0x94)


# ----------------------------------------------------------------- wills, AUTH

@pytest.mark.parametrize("will,expect", [
    ({"topic": "usp/will", "payload": b"bye"}, 0x83),
    ({"topic": "usp/will", "payload": b"bye", "retain": True}, 0x9A),
])
def test_v5_will_refused(relay, will, expect):
    c = relay.mqtt_client()
    p = c.connect("", eid="self::will", will=will, expect=expect)
    assert p.props.get(w.P_REASON_STRING)
    c.expect_close()
    relay.wait_log(r"event=conn_close .*mtp=mqtt .*reason=protocol_error")


def test_v5_will_qos2_refused_with_0x9b(relay):
    """MQTT-3.2.2-12: a will QoS above Maximum QoS is refused with 0x9B."""
    c = relay.mqtt_client()
    c.connect("", eid="self::will2", will={"topic": "usp/will", "payload": b"x", "qos": 2},
              expect=0x9B)


def test_v311_will_accepted(relay):
    """3.1.1 has no way to refuse a will politely: it is accepted (and not published)."""
    s = relay.stomp_endpoint("self::will-s")
    a = relay.mqtt_endpoint("os::will-a", level=4,
                            will={"topic": "usp/endpoint/self::will-s", "payload": b"gone",
                                  "qos": 1})
    r = w.no_session("self::will-s", "os::will-a", b"alive")
    a.send_record(r)
    assert s.recv_record() == r
    a.close()
    relay.wait_log(r'event=conn_close .*eid="os::will-a" reason=peer_closed')
    s.expect_nothing(0.2)


def test_v5_auth_method_refused(relay):
    c = relay.mqtt_client()
    c.connect("", eid="self::auth", props=[(w.P_AUTH_METHOD, "SCRAM-SHA-1")], expect=0x8C)
    c.expect_close()
    relay.wait_log(r"reason=auth_failed")


def test_auth_packet(relay):
    """AUTH without an Authentication Method is a v5 protocol error (0x82); in 3.1.1 type
    15 is reserved: the connection is closed."""
    c5 = relay.mqtt_endpoint("self::authp")
    c5.send_raw(w.mqtt_packet(w.MQTT_AUTH, 0, b"\x18\x00"))
    c5.expect_disconnect(0x82)
    c4 = relay.mqtt_endpoint("os::authp", level=4)
    c4.send_raw(w.mqtt_packet(w.MQTT_AUTH, 0, b""))
    c4.expect_close()


# ----------------------------------------------------------------- Receive Maximum

def test_outbound_receive_maximum(relay):
    """A v5 client with Receive Maximum 2 that does not PUBACK gets 2 QoS 1 PUBLISHes;
    each PUBACK lets one more go; all arrive in order with distinct packet ids."""
    rx = relay.mqtt_client()
    rx.connect("", eid="self::rm", props=[(w.P_RECEIVE_MAXIMUM, 2)])
    assert rx.subscribe(rx.topic, qos=1) == [1]
    s = relay.stomp_endpoint("self::rm-s")
    recs = [w.no_session("self::rm", "self::rm-s", b"rm %d" % i) for i in range(6)]
    for r in recs:
        s.send_record(r)
    got = [rx.recv_publish(ack=False), rx.recv_publish(ack=False)]
    rx.expect_nothing(0.3)
    rx.send_ack(MQTT_PUBACK, got[0].pid)
    got.append(rx.recv_publish(ack=False))
    rx.expect_nothing(0.2)
    rx.send_ack(MQTT_PUBACK, got[1].pid)
    rx.send_ack(MQTT_PUBACK, got[2].pid)
    got += [rx.recv_publish(ack=False), rx.recv_publish(ack=False)]
    rx.expect_nothing(0.2)
    rx.send_ack(MQTT_PUBACK, got[3].pid)
    got.append(rx.recv_publish(ack=False))
    assert [m.payload for m in got] == recs
    assert all(m.qos == 1 and m.pid for m in got)
    assert got[0].pid != got[1].pid and got[3].pid != got[4].pid
    # An unknown or repeated PUBACK is harmless.
    rx.send_ack(MQTT_PUBACK, got[0].pid)
    rx.send_ack(MQTT_PUBACK, got[4].pid)
    rx.send_ack(MQTT_PUBACK, got[5].pid)
    r = w.no_session("self::rm", "self::rm-s", b"after")
    s.send_record(r)
    assert rx.recv_record() == r


def test_client_maximum_packet_size(relay):
    """MQTT 5: never send a packet above the client's Maximum Packet Size; the Record is
    dropped and counted, smaller ones still pass."""
    rx = relay.mqtt_client()
    rx.connect("", eid="self::mps", props=[(w.P_MAX_PACKET_SIZE, 300)])
    assert rx.subscribe(rx.topic) == [1]
    s = relay.stomp_endpoint("self::mps-s")
    s.send_record(w.no_session("self::mps", "self::mps-s", b"x" * 400))
    relay.wait_log(r"reason=drop_too_large")
    small = w.no_session("self::mps", "self::mps-s", b"small")
    s.send_record(small)
    assert rx.recv_record() == small


# ----------------------------------------------------------------- keepalive

def _time_close(c, reason, out):
    t0 = time.monotonic()
    try:
        c.expect_disconnect(reason, timeout=5.0)
        out.append(time.monotonic() - t0)
    except BaseException as e:    # reported by the main thread
        out.append(e)


def test_keepalive(start_relay):
    """A client silent for 1.5 x Keep Alive is closed (v5: DISCONNECT 0x8D first); one
    sending PINGREQs stays; with server_keep_alive the server's value applies to v5
    clients and is announced in CONNACK."""
    relay = start_relay()
    relay2 = start_relay(mqtt={"server_keep_alive": 1})
    v5 = relay.mqtt_client()
    v5.connect("", eid="self::ka5", keepalive=1)
    v4 = relay.mqtt_client(level=4)
    v4.connect("os::ka4", keepalive=1)
    pinger = relay.mqtt_client()
    pinger.connect("", eid="self::ka-ping", keepalive=1)
    sk = relay2.mqtt_client()
    p = sk.connect("", eid="self::ka-server", keepalive=600)
    assert p.props[w.P_SERVER_KEEP_ALIVE] == 1
    t0 = time.monotonic()
    results = {k: [] for k in ("v5", "v4", "sk")}
    threads = [threading.Thread(target=_time_close, args=(c, 0x8D, results[k]))
               for k, c in (("v5", v5), ("v4", v4), ("sk", sk))]
    for t in threads:
        t.start()
    while time.monotonic() - t0 < 2.6:
        pinger.ping()
        time.sleep(0.4)
    for t in threads:
        t.join(6)
    for k, res in results.items():
        assert len(res) == 1 and not isinstance(res[0], BaseException), (k, res)
        assert 1.2 <= res[0] <= 2.6, "%s closed after %.2fs" % (k, res[0])
    pinger.ping()
    relay.wait_log(r'eid="self::ka5" reason=heartbeat_timeout')
    relay.wait_log(r'eid="os::ka4" reason=heartbeat_timeout')


# ----------------------------------------------------------------- takeover, duplicates

@pytest.mark.parametrize("level", [5, 4])
def test_client_id_takeover(relay, level):
    """A second connection with the same client id closes the first (v5: DISCONNECT
    0x8E) and takes over its endpoint."""
    eid = "self::take" if level == 5 else "os::take"
    first = relay.mqtt_endpoint(eid, level=level, client_id="take-client" if level == 5 else eid)
    second = relay.mqtt_endpoint(eid, level=level, client_id="take-client" if level == 5 else eid)
    first.expect_disconnect(0x8E)
    relay.wait_log(r"reason=replaced")
    s = relay.stomp_endpoint("self::take-s")
    r = w.no_session(eid, "self::take-s", b"to the new one")
    s.send_record(r)
    assert second.recv_record() == r


def test_duplicate_eid_refuse_new(start_relay):
    """With duplicate_id_policy refuse-new another client claiming a connected EID is
    refused (v5 0x85, 3.1.1 0x02), but the same client id reconnecting still takes over
    (MQTT's own rule)."""
    relay = start_relay(relay={"duplicate_id_policy": "refuse-new"})
    a = relay.mqtt_endpoint("self::dup", client_id="dup-1")
    b = relay.mqtt_client()
    b.connect("dup-2", eid="self::dup", expect=0x85)
    b.expect_close()
    c = relay.mqtt_client(level=4)
    c.connect("self::dup", expect=0x02)
    c.expect_close()
    a2 = relay.mqtt_endpoint("self::dup", client_id="dup-1")
    a.expect_disconnect(0x8E)
    s = relay.stomp_endpoint("self::dup-s")
    r = w.no_session("self::dup", "self::dup-s", b"kept")
    s.send_record(r)
    assert a2.recv_record() == r


# ----------------------------------------------------------------- subscribe ACL

@pytest.mark.parametrize("level", [5, 4])
def test_subscribe_acl(start_relay, level):
    """R-MQTT.42: only filters with the endpoint ID as a whole level (SUBACK 0x87 v5 /
    0x80 3.1.1 otherwise); "+/<EID>/#" is allowed and delivered to; endpoints listed in
    subscribe_any (exact or prefix*) may subscribe to anything."""
    relay = start_relay(mqtt={"subscribe_any": ["self::boss", "self::ops-*"]})
    no = 0x87 if level == 5 else 0x80
    eid = "self::acl"
    c = relay.mqtt_endpoint(eid, level=level, client_id=None if level == 5 else eid,
                            subscribe=False)
    got = c.subscribe(["usp/endpoint/self::other", "usp/#", "#", "usp/endpoint/self::acl-x",
                       "+/" + eid + "/#", "usp/agents/" + eid, eid])
    assert got == [no, no, no, no, 1, 1, 1]
    s = relay.stomp_endpoint("self::acl-s")
    r = w.no_session(eid, "self::acl-s", b"via +/eid/#")
    s.send_record(r)
    m = c.recv_publish()
    assert m.payload == r
    if level == 5:
        assert m.topic == "usp/" + eid   # the filter made concrete
    for boss in ("self::boss", "self::ops-7"):
        b = relay.mqtt_endpoint(boss, subscribe=False)
        assert b.subscribe(["usp/#"]) == [1]
        r = w.no_session(boss, "self::acl-s", b"to the boss")
        s.send_record(r)
        m = b.recv_publish()
        assert m.payload == r and m.topic == "usp/endpoint/" + boss
    x = relay.mqtt_endpoint("self::ops", subscribe=False)
    assert x.subscribe(["usp/#"]) == [0x87]


def test_subscribe_unsupported_features(relay):
    """CONNACK says no shared subscriptions and no subscription identifiers: a "$share/"
    filter gets SUBACK 0x9E (the others in the packet are granted), a SUBSCRIBE with a
    Subscription Identifier is a protocol error (0xA1), a client PUBLISH carrying one
    too (MQTT-3.3.4-6, 0x82). QoS 2 asked is QoS 1 granted, in both versions."""
    c = relay.mqtt_endpoint("self::feat", subscribe=False)
    assert c.subscribe([("$share/g/usp/endpoint/self::feat", 1), (c.topic, 2)]) == [0x9E, 1]
    s = relay.stomp_endpoint("self::feat-s")
    r = w.no_session("self::feat", "self::feat-s", b"not via $share")
    s.send_record(r)
    m = c.recv_publish()
    assert m.payload == r and m.topic == c.topic and m.qos == 1
    c.expect_nothing(0.2)
    c4 = relay.mqtt_endpoint("os::feat4", level=4, subscribe=False)
    assert c4.subscribe("usp/endpoint/os::feat4/#", qos=2) == [1]

    c.send_packet(w.mqtt_subscribe_packet(9, [(c.topic, 1)],
                                          props=[(w.P_SUBSCRIPTION_ID, 5)]))
    c.expect_disconnect(0xA1)
    d = relay.mqtt_endpoint("self::feat-pub")
    d.send_record(w.no_session("self::feat-s", "self::feat-pub"),
                  props=[(w.P_SUBSCRIPTION_ID, 5)])
    d.expect_disconnect(0x82)
    s.expect_nothing(0.2)


def test_unsubscribe(relay):
    c = relay.mqtt_endpoint("self::unsub")
    assert c.unsubscribe([c.topic, "usp/never"]) == [0x00, 0x11]
    s = relay.stomp_endpoint("self::unsub-s")
    s.send_record(w.no_session("self::unsub", "self::unsub-s", b"nobody listens"))
    relay.wait_log(r"reason=drop_not_subscribed")
    c.expect_nothing(0.2)
    assert c.subscribe(c.topic) == [1]
    r = w.no_session("self::unsub", "self::unsub-s", b"again")
    s.send_record(r)
    assert c.recv_record() == r


# ----------------------------------------------------------------- credentials

def test_credentials(start_relay):
    relay = start_relay(mqtt={"username": "usp", "password": "s3cr:et"})
    ok5 = relay.mqtt_client()
    ok5.connect("", eid="self::cred5", username="usp", password="s3cr:et")
    ok4 = relay.mqtt_client(level=4)
    ok4.connect("os::cred4", username="usp", password="s3cr:et")
    for kw in ({"username": "usp", "password": "wrong"}, {"username": "other",
               "password": "s3cr:et"}, {}):
        c = relay.mqtt_client()
        p = c.connect("", eid="self::cred-bad", expect=0x86, **kw)
        assert p.props.get(w.P_REASON_STRING)
        c.expect_close()
        c = relay.mqtt_client(level=4)
        p = c.connect("os::cred-bad", expect=0x04, **kw)
        assert p.body == b"\x00\x04"
        c.expect_close()
    relay.wait_log(r"reason=auth_failed")
    ok5.ping()
    ok4.ping()


# ----------------------------------------------------------------- shutdown

def test_shutdown_disconnect(relay):
    """SIGTERM: v5 clients get DISCONNECT 0x8B, 3.1.1 ones a plain close."""
    c5 = relay.mqtt_endpoint("self::bye5")
    c4 = relay.mqtt_endpoint("os::bye4", level=4)
    relay.stop()
    c5.expect_disconnect(0x8B)
    c4.expect_close()


# ----------------------------------------------------------------- topic hint

def test_unknown_to_id_delivered_by_topic(relay):
    """A Record for an unknown to_id published on another client's subscribed concrete
    topic goes to that client, and the route is learned for that sender only."""
    rx = relay.mqtt_client(level=4)
    rx.connect("os::00256D-gw")           # a gateway: its own ID, and a topic for others
    assert rx.subscribe("usp/agents/os::00256D-gw/#") == [1]
    tx = relay.mqtt_endpoint("self::hint-tx")
    other = relay.mqtt_endpoint("self::hint-other")
    r = w.no_session("os::hidden", "self::hint-tx", b"by topic")
    assert tx.send_record(r, "usp/agents/os::00256D-gw", qos=1).reason == 0
    m = rx.recv_publish()
    assert m.payload == r
    assert m.topic == "usp/agents/os::00256D-gw/reply-to=usp%2Fendpoint%2Fself::hint-tx"
    # Learned for tx: any topic now reaches rx.
    r2 = w.no_session("os::hidden", "self::hint-tx", b"learned")
    assert tx.send_record(r2, "usp/endpoint/os::hidden", qos=1).reason == 0
    assert rx.recv_record() == r2
    # Not for another sender on an unrelated topic.
    assert other.send_record(w.no_session("os::hidden", "self::hint-other", b"no"),
                             "usp/endpoint/os::hidden", qos=1).reason == 0x10
    # The sender's own topic never captures.
    assert tx.send_record(w.no_session("self::ghost", "self::hint-tx"), tx.topic,
                          qos=1).reason == 0x10
    rx.expect_nothing(0.2)


def test_unidentified_subscription_routes_nothing(relay):
    """Before a client's endpoint ID is known its SUBSCRIBE is answered but routes
    nothing: otherwise anyone could subscribe to an offline victim's topic and take
    Records for it before the ACL ever saw its ID."""
    spy = relay.mqtt_client(level=5)
    spy.connect("spy")                    # v5 without usp-endpoint-id: no EID yet
    assert spy.subscribe("usp/endpoint/self::victim") == [1]
    tx = relay.mqtt_endpoint("self::victim-ctrl")
    r = w.no_session("self::victim", "self::victim-ctrl", b"not for the spy")
    assert tx.send_record(r, "usp/endpoint/self::victim", qos=1).reason == 0x10
    spy.expect_nothing(0.2)


def test_reply_to_that_is_no_topic_is_dropped(relay):
    """A 3.1.1 /reply-to= that decodes to something that is not a topic name (wildcards,
    NUL) is not passed on: the receiver would drop its connection over it."""
    rx = relay.mqtt_client(level=4)
    rx.connect("os::00256D-rx")
    assert rx.subscribe("usp/endpoint/os::00256D-rx/#") == [1]
    tx = relay.mqtt_client(level=4)
    tx.connect("os::00256D-tx")
    r = w.no_session("os::00256D-rx", "os::00256D-tx", b"evil reply-to")
    assert tx.send_record(r, "usp/c/reply-to=a%2Bb%23c%00d", qos=1).reason == 0
    m = rx.recv_publish()
    assert m.payload == r
    # The alias topic of the sender replaces the invalid one.
    assert m.topic == "usp/endpoint/os::00256D-rx/reply-to=usp%2Fendpoint%2Fos::00256D-tx"


def test_unknown_to_id_delivered_by_wildcard_of_granted_endpoint(start_relay):
    """A controller granted subscribe_any that subscribes with a wildcard takes Records
    for unknown IDs published on matching topics; an ordinary endpoint's wildcard filter
    (allowed because it names its own ID) never does."""
    relay = start_relay(mqtt={"subscribe_any": ["self::legacy-ctrl"]})
    ctrl = relay.mqtt_endpoint("self::legacy-ctrl", subscribe=False)
    assert ctrl.subscribe(["usp/controller/+/#"]) == [1]
    agent = relay.mqtt_endpoint("os::00256D-wild", subscribe=False)
    assert agent.subscribe(["+/os::00256D-wild/#"]) == [1]
    tx = relay.mqtt_endpoint("self::wild-tx")
    r = w.no_session("self::legacy-ctrl-alias", "self::wild-tx", b"for the controller")
    assert tx.send_record(r, "usp/controller/a/b", qos=1).reason == 0
    assert ctrl.recv_record() == r
    # Topic matching the agent's own wildcard filter, unknown to_id: not delivered.
    assert tx.send_record(w.no_session("self::nobody", "self::wild-tx", b"no"),
                          "usp/os::00256D-wild/x", qos=1).reason == 0x10
    agent.expect_nothing(0.2)
    # Unsubscribed: the filter takes nothing more.
    ctrl.unsubscribe(["usp/controller/+/#"])
    assert tx.send_record(w.no_session("self::other-alias", "self::wild-tx", b"gone"),
                          "usp/controller/a/b", qos=1).reason == 0x10


# ----------------------------------------------------------------- hostile input

@pytest.fixture
def hrelay(start_relay):
    return start_relay(limits={"max_record_size": MAX_RECORD,
                               "max_unidentified_input": MAX_UNIDENTIFIED,
                               "handshake_timeout": 30.0})


@pytest.fixture
def probe(hrelay):
    return hrelay.probe(kinds=("stomp", "mqtt5", "mqtt4"))


@pytest.mark.parametrize("garbage", [
    b"\x00\x00",                                                          # reserved type 0
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),   # TLS ClientHello
    b"\x10\x0c\x00\x06MQIsdp\x03\x02\x00\x3c",                            # MQTT 3.1
    b"\x10\x0c\x00\x04MQTT\x04\x03\x00\x3c\x00\x00",                      # reserved flag
    b"\x10\x04\x00\x04MQTT\x04\x02\x00\x00\x00\x00",                      # length too short
], ids=["type0", "http", "tls", "mqisdp", "reserved-flag", "short"])
def test_garbage_first_packet(hrelay, probe, garbage):
    c = hrelay.mqtt_client()
    c.send_raw(garbage)
    c.expect_close()
    probe.check()


@pytest.mark.parametrize("first", [
    w.mqtt_packet(w.MQTT_PINGREQ, 0, b""),
    w.mqtt_subscribe_packet(1, [("usp/#", 1)], level=4),
    w.mqtt_publish_packet("usp/x", b"\x0a", level=4),
    w.mqtt_packet(w.MQTT_DISCONNECT, 0, b""),
], ids=["pingreq", "subscribe", "publish", "disconnect"])
def test_non_connect_first(hrelay, probe, first):
    c = hrelay.mqtt_client()
    c.send_raw(first)
    c.expect_close()
    probe.check()


def test_oversized_remaining_length_before_connect(hrelay, probe):
    """Before CONNECT the bound is max_unidentified_input; the declared size alone gets
    the connection closed, while the body has not been sent."""
    for n in (MAX_UNIDENTIFIED + 100, 268435455):
        c = hrelay.mqtt_client()
        c.send_raw(b"\x10" + w.mqtt_vbi(n))
        c.expect_close(3.0)
    probe.check()


@pytest.mark.parametrize("level", [5, 4])
def test_oversized_publish_after_connect(hrelay, probe, level):
    """A PUBLISH declaring more than the advertised Maximum Packet Size: v5 DISCONNECT
    0x95, 3.1.1 close, before the body is sent."""
    c = hrelay.mqtt_endpoint("self::huge" if level == 5 else "os::huge", level=level)
    c.send_raw(b"\x30" + w.mqtt_vbi(MAX_RECORD + 65536 + 1000))
    c.expect_disconnect(0x95, 3.0)
    probe.check()


def test_record_over_max_record_size_dropped(hrelay, probe):
    """A PUBLISH that fits the packet limit but whose Record exceeds max_record_size is
    dropped and counted; the session stays."""
    c = hrelay.mqtt_endpoint("self::big")
    r = w.no_session(probe.m5.eid, "self::big", b"b" * (MAX_RECORD + 10))
    assert c.send_record(r, qos=1).reason >= 0x80
    hrelay.wait_log(r'eid="self::big" reason=drop_too_large')
    r = w.no_session(probe.m5.eid, "self::big", b"small")
    c.send_record(r)
    assert probe.m5.recv_record() == r
    probe.check()


@pytest.mark.parametrize("connected", [False, True])
def test_five_byte_remaining_length(hrelay, probe, connected):
    if connected:
        c = hrelay.mqtt_endpoint("self::vbi")
    else:
        c = hrelay.mqtt_client()
    c.send_raw(b"\x30\xff\xff\xff\xff\x01")
    if connected:
        c.expect_disconnect(0x81)
    else:
        c.expect_close()
    probe.check()


def test_protocol_errors_after_connect(hrelay, probe):
    """A second CONNECT (0x82), a PUBLISH to a wildcard topic, a malformed SUBSCRIBE and
    a server-only packet type each end the v5 session with a DISCONNECT >= 0x80."""
    cases = [
        (w.mqtt_connect_packet("", level=5), 0x82),
        (w.mqtt_publish_packet("usp/+/x", b"\x0a", level=5), None),
        (w.mqtt_packet(w.MQTT_SUBSCRIBE, 0x02, b"\x00\x01\x00"), None),
        (w.mqtt_packet(w.MQTT_CONNACK, 0, b"\x00\x00\x00"), 0x82),
    ]
    for i, (pkt, reason) in enumerate(cases):
        c = hrelay.mqtt_endpoint("self::perr%d" % i)
        c.send_raw(pkt)
        p = c.recv_packet()
        assert p.type == MQTT_DISCONNECT and p.reason >= 0x80, p
        if reason is not None:
            assert p.reason == reason, p
        c.expect_close()
    probe.check()


def test_malformed_record_dropped_silently(hrelay, probe):
    """Spec notes §9.1: an unextractable Record on MQTT is dropped, the session stays."""
    c = hrelay.mqtt_endpoint("self::junk")
    assert c.send_record(b"\xff\xff\xff", "usp/endpoint/x", qos=1).reason >= 0x80
    hrelay.wait_log(r'eid="self::junk" reason=drop_malformed')
    r = w.no_session(probe.s.eid, "self::junk", b"after junk")
    c.send_record(r)
    assert probe.s.recv_record() == r
    probe.check()


def test_handshake_timeout(start_relay):
    relay = start_relay(limits={"handshake_timeout": 0.5})
    c = relay.mqtt_client()
    t0 = time.monotonic()
    c.expect_close(5.0)
    assert time.monotonic() - t0 < 3.0
    relay.wait_log(r"mtp=mqtt .*reason=handshake_timeout")
    ok = relay.mqtt_endpoint("self::in-time")
    ok.ping()


def test_obuspa_reachability_probe_tolerated(relay):
    """obuspa opens and closes a bare TCP connection before each MQTT connect."""
    for _ in range(3):
        relay.mqtt_client().close()
    c = relay.mqtt_endpoint(AGENT, level=4)
    c.ping()


def test_refused_connect_does_not_take_over_client_id(start_relay):
    """The ClientId takeover happens only when the new CONNECT succeeds: a CONNECT refused
    (its endpoint ID is held, refuse-new) must not cost the holder of the ClientId its
    session."""
    relay = start_relay(relay={"duplicate_id_policy": "refuse-new"})
    holder = relay.mqtt_endpoint("self::held-id")
    a = relay.mqtt_client(level=5)
    a.connect("shared-cid", eid="self::cid-owner")
    assert a.subscribe(a.topic) == [1]
    b = relay.mqtt_client(level=5)
    p = b.connect("shared-cid", eid="self::held-id", expect=None)
    assert p.reason != 0
    assert not a.is_closed(0.3), "the ClientId holder was kicked by a refused CONNECT"
    r = w.no_session("self::cid-owner", "self::held-id", b"still here")
    holder.send_record(r, "x", qos=1)
    assert a.recv_record() == r


def test_closing_client_takes_no_records_by_topic(relay):
    """A client that is closing (goodbye queued, flushing) has already withdrawn its topic
    routes: a Record for an unknown ID on its topic is refused (0x10), not acknowledged
    and lost."""
    rx = relay.mqtt_client(level=4)
    rx.connect("os::00256D-closing")
    assert rx.subscribe("usp/agents/os::00256D-closing/#") == [1]
    tx = relay.mqtt_endpoint("self::closing-tx")
    rx.send_packet(b"\xe0\x00")           # DISCONNECT
    # The relay shuts its side at once, then lingers (up to 500 ms, rx keeps its socket
    # open) before the connection is freed: the Record below lands in that window.
    rx.wait_closed()
    r = w.no_session("os::unknown-1", "self::closing-tx", b"late")
    assert tx.send_record(r, "usp/agents/os::00256D-closing", qos=1).reason == 0x10
