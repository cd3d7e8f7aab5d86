"""Limits against abuse: limits.max_connections_per_source (open connections from one IP
address on one listener; UNIX peers exempt) and limits.accept_rate / accept_burst (a
token bucket per listener). A refused connection gets its MTP's "busy" answer, then is
closed: STOMP ERROR "server busy" at once, MQTT CONNACK 0x89 (rate) / 0x97 (source) or
3.1.1 return code 3, WebSocket HTTP 503, UDS Error TLV "server busy"."""
import collections
import socket
import time

import pytest

import uspwire as w

SECOND_SOURCE = "127.0.0.2"


def second_source_ok():
    try:
        s = socket.socket()
        s.bind((SECOND_SOURCE, 0))
        s.close()
        return True
    except OSError:
        return False


def mqtt_from(relay, src, level=5):
    """An MqttClient whose TCP connection comes from address SRC."""
    sock = socket.create_connection(("127.0.0.1", relay.mqtt_port), timeout=5.0,
                                    source_address=(src, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return relay.track(w.MqttClient(None, level=level, sock=sock))


def wait_ws_endpoint(relay, eid, timeout=5.0):
    """ws_endpoint(EID), retried while a readiness probe or a closed session may still
    hold the address's only slot (their release is not logged before the request)."""
    end = time.monotonic() + timeout
    while True:
        c = relay.ws_client(eid=eid)
        if c.status == 101:
            return c
        assert c.status == 503, (c.status, c.body)
        c.close()
        assert time.monotonic() < end, "no slot came free for %s" % eid
        time.sleep(0.05)


def test_stomp_per_source(start_relay):
    """The third STOMP connection from one address gets ERROR "server busy" before it
    sends anything and is closed; once one closes, a new one is accepted. Other
    listeners count on their own."""
    relay = start_relay(stomp={"limits": {"max_connections_per_source": 2}})
    a = relay.stomp_endpoint("self::src-a")
    b = relay.stomp_endpoint("self::src-b")
    extra = relay.stomp_client()
    f = extra.expect_error_close()
    assert f["message"] == "server busy"
    assert f.body == b"server busy"
    relay.wait_log(r"event=conn_rejected listener=stomp peer=127\.0\.0\.1:\d+ "
                   r"reason=max_connections_per_source limit=2")
    relay.wait_log(r"event=conn_close .*mtp=stomp .*reason=busy")
    # The refused one held no slot, and the MQTT listener has its own count.
    relay.mqtt_endpoint("self::src-m")
    a.close()
    relay.wait_log(r'event=conn_close .*eid="self::src-a"')
    c = relay.stomp_endpoint("self::src-c")
    r = w.no_session("self::src-b", "self::src-c", b"after")
    c.send_record(r)
    assert b.recv_record() == r
    relay.stomp_client().expect_error_close()


def test_stomp_refusals_logged_once_a_second(start_relay):
    """A storm of refused connections: each one closed with its ERROR, the warning logged
    at most once a second."""
    relay = start_relay(stomp={"limits": {"max_connections_per_source": 1}})
    relay.stomp_endpoint("self::storm-held")
    t0 = time.monotonic()
    for _ in range(20):
        c = relay.stomp_client()
        assert c.expect_error_close()["message"] == "server busy"
        c.close()
    elapsed = time.monotonic() - t0
    relay.wait_log(r"(?s)(?:event=conn_close [^\n]*reason=busy.*){20}")
    n = relay.count_log(r"event=conn_rejected listener=stomp ")
    assert 1 <= n <= int(elapsed) + 2, n


@pytest.mark.skipif(not second_source_ok(), reason="127.0.0.2 is not usable here")
def test_mqtt_per_source_codes_and_other_source(start_relay):
    """Over the limit: v5 CONNACK 0x97 Quota exceeded, 3.1.1 return code 3 Server
    unavailable, then closed. Another source address is not affected."""
    relay = start_relay(mqtt={"limits": {"max_connections_per_source": 1}})
    held = relay.mqtt_endpoint("self::q-held")
    c5 = relay.mqtt_client(level=5)
    p = c5.connect("", eid="self::q-5", expect=0x97)
    assert p.props.get(w.P_REASON_STRING) == "server busy"
    assert c5.wait_closed() == b""
    c4 = relay.mqtt_client(level=4)
    c4.connect("os::q-4", expect=3)
    assert c4.wait_closed() == b""
    relay.wait_log(r"event=conn_rejected listener=mqtt peer=127\.0\.0\.1:\d+ "
                   r"reason=max_connections_per_source limit=1")
    # 127.0.0.2 has its own allowance (and its own limit of one).
    other = mqtt_from(relay, SECOND_SOURCE)
    other.connect("", eid="self::q-other", expect=0)
    second = mqtt_from(relay, SECOND_SOURCE, level=4)
    second.connect("os::q-other2", expect=3)
    # Both sessions work.
    assert other.subscribe(other.topic, qos=0) == [0]
    assert held.topic
    r = w.no_session("self::q-other", "self::q-held", b"hi")
    held.send_record(r, topic=other.topic)
    assert other.recv_record() == r


def _burst_mqtt(relay, n):
    clients = [relay.mqtt_client(level=5) for _ in range(n)]
    reasons = []
    for i, c in enumerate(clients):
        p = c.connect("", eid="self::burst-%d" % i, expect=None)
        reasons.append(p.reason)
    return clients, reasons


def test_mqtt_accept_rate(start_relay):
    """accept_rate 1 with a burst of 4: of 6 connections within a second, 4 are served and
    2 get CONNACK 0x89 Server busy; a second later there is room for one more."""
    relay = start_relay(mqtt={"limits": {"accept_rate": 1, "accept_burst": 4}})
    time.sleep(1.3)  # the readiness probe took a token: let the bucket fill again
    clients, reasons = _burst_mqtt(relay, 6)
    assert collections.Counter(reasons) == {0: 4, 0x89: 2}, reasons
    for c, rc in zip(clients, reasons):
        if rc:
            assert c.wait_closed() == b""
    relay.wait_log(r"event=conn_rejected listener=mqtt peer=\S+ reason=accept_rate "
                   r"rate=1 burst=4")
    late = relay.mqtt_client(level=4)
    late.connect("os::burst-late", expect=3)  # the bucket is still empty: 3.1.1 code 3
    time.sleep(1.2)
    relay.mqtt_endpoint("self::burst-after")
    # The served ones are ordinary sessions.
    ok = [c for c, rc in zip(clients, reasons) if rc == 0]
    assert ok[0].subscribe(ok[0].topic, qos=0) == [0]
    r = w.no_session(ok[0].eid, ok[1].eid, b"x")
    ok[1].send_record(r, topic=ok[0].topic)
    assert ok[0].recv_record() == r


def test_stomp_accept_rate_default_burst(start_relay):
    """accept_burst unset is accept_rate: with 2 a second, a burst of 4 gets two ERRORs."""
    relay = start_relay(stomp={"limits": {"accept_rate": 2}})
    time.sleep(1.2)
    clients = [relay.stomp_client() for _ in range(4)]
    busy = 0
    for i, c in enumerate(clients):
        try:
            f = c.recv_frame(timeout=0.4)
        except TimeoutError:
            c.connect("self::rate-%d" % i)
            continue
        assert f.cmd == "ERROR" and f["message"] == "server busy", f
        busy += 1
    assert busy == 2


def test_uds_accept_rate_and_no_source_limit(start_relay):
    """UNIX-socket peers are never limited per source (the global limit of 1 applies to
    the TCP listeners only); accept_rate does apply: the refused one gets an Error TLV."""
    relay = start_relay(limits={"max_connections_per_source": 1},
                        uds={"limits": {"accept_rate": 1, "accept_burst": 3}})
    clients = [relay.uds_client() for _ in range(4)]
    busy = []
    for i, c in enumerate(clients):
        try:
            t, v = c.recv_tlv(timeout=0.4)
        except TimeoutError:
            assert c.handshake("self::uds-%d" % i) == "self::usprelay"
            continue
        assert (t, v) == (w.TLV_ERROR, b"server busy")
        assert c.wait_closed() == b""
        busy.append(i)
    assert len(busy) == 1, busy
    relay.wait_log(r"event=conn_rejected listener=uds peer=unix:\S+ reason=accept_rate")
    # Three handshaken UNIX peers on one listener, beyond the per-source limit of 1.
    assert relay.count_log(r'event=endpoint_bound .*mtp=uds listener=uds ') == 3
    # The uds-ctrl listener has no rate limit and no source limit either.
    for i in range(3):
        relay.uds_endpoint("self::uds-ctrl-%d" % i, path=relay.uds_ctrl_path)


def test_websocket_per_source_503(start_relay):
    """A WebSocket upgrade over the per-source limit is answered 503 and closed; after
    the first closes, a new one is accepted."""
    relay = start_relay(ws={"limits": {"max_connections_per_source": 1}})
    first = wait_ws_endpoint(relay, "self::ws-1")
    c = relay.ws_client(eid="self::ws-2")
    assert c.status == 503, (c.status, c.body)
    assert b"server busy" in c.body
    assert c.wait_closed() == b""
    relay.wait_log(r"event=conn_rejected listener=ws peer=\S+ "
                   r"reason=max_connections_per_source limit=1")
    relay.wait_log(r'event=ws_refused .*status=503 reason="server busy"')
    first.close()
    relay.wait_log(r'event=conn_close .*eid="self::ws-1"')
    relay.ws_endpoint("self::ws-3")


def test_mqtt_over_websocket_admitted_once(start_relay):
    """MQTT over WebSocket is admitted by its WebSocket listener only: the mqtt listener's
    accept_rate (1 a second, burst 1) does not apply to its sessions, so five in a row
    all connect."""
    relay = start_relay(mqtt={"limits": {"accept_rate": 1, "accept_burst": 1}})
    t0 = time.monotonic()
    sessions = []
    for i in range(5):
        ws = relay.ws_client(protocols=("mqtt",))
        assert ws.status == 101, (ws.status, ws.body)
        m = relay.track(w.MqttClient(None, level=5, sock=w.WsStream(ws)))
        m.connect("", eid="self::wsm-%d" % i, expect=0)
        sessions.append(m)
    # Five within a couple of seconds: a rate of 1 a second would have refused some.
    assert time.monotonic() - t0 < 2.5
    # The plain listener is limited all the same.
    plain = [relay.mqtt_client(level=5) for _ in range(3)]
    reasons = [c.connect("", eid="self::wsm-plain-%d" % i, expect=None).reason
               for i, c in enumerate(plain)]
    assert 0x89 in reasons, reasons
