"""The relay's WebSocket MTP server, driven with uspwire's raw RFC 6455 client (spec notes §3
and §9 items 1-12): the opening handshake (v1.usp, eid query decoded once, the deprecated
extension header as fallback, refusals with their HTTP status, the bbf-usp-protocol answer
only on controller paths), an obuspa-style request, Records byte-identical WS <-> WS / STOMP
/ MQTT 5 / MQTT 3.1.1 / UDS up to 5 MiB, close codes for text, malformed, spoofed and
oversized input, fragment reassembly and fragment_size, per-pair sessions (R-WS.4) with
replacement, refusal and fallback, a controller on WebSocket, Pings both ways, the handshake
timeout, SIGTERM, 500 concurrent sessions driven by one selector loop, and MQTT over
WebSocket. Third-party clients are in test_ws_clients.py."""

import os
import re
import selectors
import signal
import socket
import time

import pytest

import uspwire as w
from conftest import CTRL_EID, WS_CTRL_PATH

MIB = 1024 * 1024
BIG = 5 * MIB
DEFAULT_MAX_RECORD = 5242880
BIG_LIMITS = {"max_record_size": 6 * MIB}

AGENT = "os::00256D-wsagent"
OTHER = "self::other-ctrl"


# ----------------------------------------------------------------- helpers

def send_quietly(fn, *args, **kw):
    """Send something the relay may stop reading halfway (it closes on us)."""
    try:
        fn(*args, **kw)
    except (BrokenPipeError, ConnectionResetError):
        pass


# ----------------------------------------------------------------- handshake

def test_handshake_v1usp_and_records_both_ways(relay):
    """R-WS.9-11: v1.usp offered (here among others) is chosen and echoed; without an
    offered extension there is no Sec-WebSocket-Extensions; the eid query names the
    endpoint: Records to it arrive, its own pass the from_id check."""
    a = relay.ws_endpoint(AGENT, protocols=("chat", "v1.usp"))
    assert a.subprotocol == "v1.usp"
    assert a.header("sec-websocket-extensions") is None
    relay.wait_log(r'event=endpoint_bound conn=\d+ .*eid="%s"' % AGENT)
    s = relay.stomp_endpoint(OTHER)
    down = w.no_session(AGENT, OTHER, b"Get Device.")
    s.send_record(down)
    op, got, nframes = a.recv_message()
    assert (op, got, nframes) == (w.WS_BINARY, down, 1)
    up = w.no_session(OTHER, AGENT, b"GetResp")
    a.send_record(up)
    m = s.recv_message()
    assert m.body == up
    assert m["reply-to-dest"] == w.endpoint_dest(AGENT)
    a.expect_nothing(0.1)


def test_eid_percent_decoded_exactly_once(relay):
    """R-WS.10c: "eid=doc::agent%2521" is the endpoint "doc::agent%21" (decoded once)."""
    eid = "doc::agent%21"
    a = relay.ws_client("/usp", query="eid=doc::agent%2521")
    assert a.status == 101 and a.subprotocol == "v1.usp", (a.status, a.headers)
    relay.wait_log(r'event=endpoint_bound conn=\d+ .*eid="doc::agent%21"')
    s = relay.stomp_endpoint(OTHER)
    r = w.no_session(eid, OTHER, b"to the once-decoded id")
    s.send_record(r)
    assert a.recv_record() == r
    up = w.no_session(OTHER, eid, b"from it")
    a.send_record(up)
    assert s.recv_record() == up
    # Decoding twice would give "doc::agent!", not a valid ID; decoding zero times
    # "doc::agent%2521": a Record for that one must not reach the session.
    mark = len(relay.log())
    s.send_record(w.no_session("doc::agent%2521", OTHER, b"not me"))
    relay.wait_log(r"reason=drop_no_route", start=mark)
    a.expect_nothing(0.1)


def test_eid_among_other_query_parameters(relay):
    """R-WS.10b: eid is one "&"-separated parameter among others."""
    eid = "os::00256D-query"
    a = relay.ws_client("/usp", query="x=1&eid=%s&y=eid%%3Dos%%3A%%3Anot-me" % w.pct_encode(eid))
    assert a.status == 101, (a.status, a.headers, a.body)
    s = relay.stomp_endpoint(OTHER)
    r = w.no_session(eid, OTHER, b"found among others")
    s.send_record(r)
    assert a.recv_record() == r
    up = w.no_session(OTHER, eid, b"back")
    a.send_record(up)
    assert s.recv_record() == up


def test_eid_from_deprecated_extension_header(relay):
    """R-WS.10a: without an eid query, Sec-WebSocket-Extensions bbf-usp-protocol; eid=
    names the endpoint."""
    eid = "os::00256D-extonly"
    a = relay.ws_client("/usp", eid=None, ext='bbf-usp-protocol; eid="%s"' % eid)
    assert a.status == 101 and a.subprotocol == "v1.usp", (a.status, a.headers, a.body)
    s = relay.stomp_endpoint(OTHER)
    r = w.no_session(eid, OTHER, b"via ext eid")
    s.send_record(r)
    assert a.recv_record() == r
    up = w.no_session(OTHER, eid, b"back")
    a.send_record(up)
    assert s.recv_record() == up


REFUSALS = [
    # (what, path, kwargs, status)
    ("only-chat-offered", "/usp", dict(eid=AGENT, protocols=("chat",)), 400),
    ("no-protocol-header", "/usp", dict(eid=AGENT, protocols=None), 400),
    ("no-eid", "/usp", dict(eid=None), 400),
    ("empty-eid", "/usp", dict(query="eid="), 400),
    ("invalid-eid", "/usp", dict(query="eid=not-an-endpoint-id"), 400),
    # libwebsockets refuses a broken %-escape while parsing, before the relay sees it.
    ("broken-percent", "/usp", dict(query="eid=os::a%2"), 403),
    ("other-query-only", "/usp", dict(query="x=1"), 400),
    ("unknown-path", "/nope", dict(eid=AGENT), 404),
    ("path-prefix", "/usp/other", dict(eid=AGENT), 404),
    ("plain-get-known-path", "/usp", dict(eid=AGENT, plain=True), 426),
    ("plain-get-unknown-path", "/nope", dict(eid=AGENT, plain=True), 404),
    ("no-v1usp-on-ctrl-path", WS_CTRL_PATH, dict(eid=AGENT, protocols=("chat",)), 400),
]


@pytest.mark.parametrize("what,path,kw,status", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_http_status(relay, what, path, kw, status):
    """§9.10: no upgrade without v1.usp, without a valid eid, on an unknown path (or for a
    plain GET): the HTTP status says why, nothing is switched, and the relay goes on
    serving (a WebSocket probe among others)."""
    probe = relay.probe("rf", kinds=("stomp", "ws"))
    c = relay.ws_client(path, **kw)
    assert c.status == status, "%s: got %s %s %r %r" % (what, c.status, c.reason, c.headers,
                                                       c.body[:200])
    assert c.header("sec-websocket-accept") is None
    assert c.header("upgrade") is None or c.status == 426
    probe.check()


def test_extension_answer_only_on_controller_path_when_offered(relay):
    """R-WS.11a / §9.10: bbf-usp-protocol; eid="<controller>" is answered only when the
    client offered the extension on a path that names a controller; never on /usp (the
    relay's own ID is no peer), never when not offered."""
    ext = relay.ws_endpoint("os::00256D-ext1", path=WS_CTRL_PATH, ext=True)
    val = ext.header("sec-websocket-extensions")
    assert val is not None, ext.headers
    assert re.fullmatch(r'bbf-usp-protocol\s*;\s*eid="%s"' % re.escape(CTRL_EID), val), val

    plain = relay.ws_endpoint("os::00256D-ext2", path="/usp", ext=True)
    assert "bbf-usp-protocol" not in (plain.header("sec-websocket-extensions") or "")
    assert "self::usprelay" not in str(plain.headers)

    quiet = relay.ws_endpoint("os::00256D-ext3", path=WS_CTRL_PATH)
    assert quiet.header("sec-websocket-extensions") is None, quiet.headers

    # All three are live sessions.
    c = relay.stomp_endpoint(CTRL_EID)
    for e in (ext, quiet):
        r = w.no_session(e.eid, CTRL_EID, b"hi")
        c.send_record(r)
        assert e.recv_record() == r
    x = relay.stomp_endpoint(OTHER)
    r = w.no_session(plain.eid, OTHER, b"hi")
    x.send_record(r)
    assert plain.recv_record() == r


def test_obuspa_style_agent(relay):
    """The request obuspa's WS client makes (Host without port, Origin, no extension
    header, every reserved char of the eid percent-encoded) is accepted; its
    WebSocketConnect Record and the traffic after it pass both ways unchanged."""
    eid = "os::00256D-0123456789"
    a = relay.ws_client("/usp", query="eid=os%3A%3A00256D-0123456789", host_header="127.0.0.1",
                        origin="http://127.0.0.1")
    assert b"Host: 127.0.0.1\r\n" in a.request and b"Extensions" not in a.request
    assert a.status == 101 and a.subprotocol == "v1.usp", (a.status, a.headers)
    a.eid = eid
    ctrl = relay.stomp_endpoint("self::obuspa-ctrl")
    hello = w.websocket_connect("self::obuspa-ctrl", eid)
    a.send_record(hello)
    assert ctrl.recv_record() == hello
    notify = w.session_context("self::obuspa-ctrl", eid, [os.urandom(300)],
                               payload_security=w.TLS12)
    a.send_record(notify)
    assert ctrl.recv_record() == notify
    get = w.no_session(eid, "self::obuspa-ctrl", b"Get Device.DeviceInfo.")
    ctrl.send_record(get)
    assert a.recv_record() == get


# ----------------------------------------------------------------- Records across MTPs

SIZES = [("min", 0), ("1KiB", 1024), ("64KiB+3", 65539), ("1MiB+1", MIB + 1), ("5MiB", BIG)]


@pytest.mark.parametrize("kind", ["ws", "stomp", "mqtt5", "mqtt4", "uds"])
def test_records_byte_identical_with_every_mtp(start_relay, kind):
    """§9.2: Records of every size up to 5 MiB go WS -> KIND and KIND -> WS as one binary
    message each (no fragmentation by default) and arrive byte-identical."""
    relay = start_relay(limits=BIG_LIMITS)
    peer_eid = "os::peer-" + kind
    a = relay.ws_endpoint(AGENT)
    p = relay.endpoint(kind, peer_eid)
    for name, size in SIZES:
        up = w.no_session_of_size(peer_eid, AGENT, size)
        a.send_record(up)
        got = p.recv_record(timeout=30)
        assert len(got) == len(up) and got == up, "%s WS->%s" % (name, kind)
        down = w.no_session_of_size(AGENT, peer_eid, size)
        p.send_record(down)
        op, got, nframes = a.recv_message(timeout=30)
        assert op == w.WS_BINARY and nframes == 1, (name, op, nframes)
        assert len(got) == len(down) and got == down, "%s %s->WS" % (name, kind)
    a.expect_nothing(0.1)
    p.expect_nothing(0.1)


def test_default_max_record_size_boundary(relay):
    """The default max_record_size is 5 MiB: a Record of exactly 5242880 bytes passes WS ->
    WS; one byte more closes the sender with 1009 (drop_too_large), the receiver gets
    nothing."""
    a = relay.ws_endpoint(AGENT)
    b = relay.ws_endpoint("self::big-peer")
    r = w.no_session_of_size("self::big-peer", AGENT, DEFAULT_MAX_RECORD)
    a.send_record(r)
    assert b.recv_record(timeout=30) == r
    over = w.no_session_of_size("self::big-peer", AGENT, DEFAULT_MAX_RECORD + 1)
    send_quietly(a.send_record, over)
    code, _reason = a.expect_close(timeout=10)
    assert code == w.WS_TOO_BIG
    relay.wait_log(r'eid="%s" reason=drop_too_large' % AGENT)
    b.expect_nothing(0.2)


# ----------------------------------------------------------------- hostile input

def test_text_message_closes_1003(relay):
    """R-WS.14/16: a text frame carries no Record: Close 1003; others are served."""
    probe = relay.probe("tx", kinds=("stomp", "ws"))
    a = relay.ws_endpoint(AGENT)
    a.send_text("hello")
    code, _ = a.expect_close()
    assert code == w.WS_UNSUPPORTED_DATA
    probe.check()


MALFORMED = [
    ("garbage", b"\xff\xfe not protobuf"),
    ("no-to-id", w.encode_record("", AGENT, 7, w.f_bytes(2, b"x"))),
    ("no-record-type", w.f_bytes(1, "1.3") + w.f_bytes(2, OTHER) + w.f_bytes(3, AGENT)),
    ("empty-message", b""),
]


@pytest.mark.parametrize("what,data", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_record_closes_1003(relay, what, data):
    """R-WS.16 / §9.1: a binary message whose Record cannot be extracted: Close 1003,
    counted as drop_malformed."""
    probe = relay.probe("mf", kinds=("stomp", "ws"))
    peer = relay.stomp_endpoint(OTHER)
    a = relay.ws_endpoint(AGENT)
    a.send_binary(data)
    code, _ = a.expect_close()
    assert code == w.WS_UNSUPPORTED_DATA, what
    peer.expect_nothing(0.1)
    probe.check()
    relay.close_clients()
    assert relay.stop() == 0
    assert relay.stopped_counters()["drop_malformed"] == 1


def test_self_addressed_record_closes_1003(relay):
    """§9.1: to_id == from_id is unextractable too: Close 1003."""
    a = relay.ws_endpoint(AGENT)
    a.send_record(w.no_session(AGENT, AGENT, b"me"))
    code, _ = a.expect_close()
    assert code == w.WS_UNSUPPORTED_DATA
    relay.wait_log(r"reason=drop_self_addressed")


def test_spoofed_from_id_dropped_session_stays(relay):
    """§9.4: a Record whose from_id is not the session's eid is dropped and counted; the
    session stays open and its genuine Records pass."""
    a = relay.ws_endpoint(AGENT)
    victim = relay.stomp_endpoint(OTHER)
    a.send_record(w.no_session(OTHER, "os::00256D-someone-else", b"forged"))
    relay.wait_log(r'reason=drop_spoofed to_id="%s" from_id="os::00256D-someone-else"' % OTHER)
    victim.expect_nothing(0.1)
    ok = w.no_session(OTHER, AGENT, b"genuine")
    a.send_record(ok)
    assert victim.recv_record() == ok
    back = w.no_session(AGENT, OTHER, b"still open")
    victim.send_record(back)
    assert a.recv_record() == back
    relay.close_clients()
    assert relay.stop() == 0
    c = relay.stopped_counters()
    # records_in counts every Record read, the dropped one too.
    assert (c["drop_spoofed"], c["records_in"], c["records_out"]) == (1, 3, 2), c


def test_unroutable_record_dropped_session_stays(relay):
    """A well-formed Record for an endpoint nobody is connected as is dropped
    (drop_no_route) without closing the sender."""
    a = relay.ws_endpoint(AGENT)
    a.send_record(w.no_session("os::00256D-nobody", AGENT, b"lost"))
    relay.wait_log(r'eid="%s" reason=drop_no_route' % AGENT)
    s = relay.stomp_endpoint(OTHER)
    r = w.no_session(OTHER, AGENT, b"still open")
    a.send_record(r)
    assert s.recv_record() == r


def test_client_close_handshake(relay):
    """A client Close (1000) is answered with a Close and the TCP connection is closed;
    the endpoint is gone (a Record for it is no longer routed)."""
    a = relay.ws_endpoint(AGENT)
    a.send_close(w.WS_NORMAL, "bye")
    code, _ = a.expect_close()
    assert code == w.WS_NORMAL
    relay.wait_log(r'event=conn_close .*eid="%s"' % AGENT)
    s = relay.stomp_endpoint(OTHER)
    mark = len(relay.log())
    s.send_record(w.no_session(AGENT, OTHER, b"too late"))
    relay.wait_log(r"reason=drop_no_route", start=mark)


def test_fragmented_message_reassembled(start_relay):
    """R-WS.14b: a Record in continuation frames (of uneven sizes, 1-byte frames, a Ping
    between fragments, a 3 MiB Record in 7 frames) reaches the peer as the exact Record;
    the mid-message Ping is answered."""
    relay = start_relay(limits=BIG_LIMITS)
    a = relay.ws_endpoint(AGENT)
    b = relay.ws_endpoint("self::frag-peer")
    r1 = w.no_session("self::frag-peer", AGENT, os.urandom(5000))
    a.send_fragmented(r1, sizes=[1, 2, 997, 3000, len(r1) - 4000])
    assert b.recv_record() == r1
    r2 = w.no_session("self::frag-peer", AGENT, b"tiny")
    a.send_fragmented(r2, len(r2))                       # one byte per frame
    assert b.recv_record() == r2
    r3 = w.no_session("self::frag-peer", AGENT, b"ping inside")
    a.send_fragmented(r3, 3, between=w.ws_frame(w.WS_PING, b"mid"))
    assert b.recv_record() == r3
    assert a.ping(b"after") == b"after"
    assert b"mid" in a.pongs
    r4 = w.no_session("self::frag-peer", AGENT, os.urandom(3 * MIB))
    a.send_fragmented(r4, 7)
    assert b.recv_record(timeout=30) == r4
    # and the other way, fragmented by the client the relay delivers to
    r5 = w.no_session(AGENT, "self::frag-peer", os.urandom(70000))
    b.send_fragmented(r5, 4)
    op, got, n = a.recv_message()
    assert (op, got) == (w.WS_BINARY, r5)


@pytest.mark.parametrize("how", ["single-frame", "fragments"])
def test_message_above_max_record_size_closes_1009(start_relay, how):
    """A message above the listener's max_record_size (4096 here) closes with 1009 and is
    counted drop_too_large, whether one frame or continuation frames carry it; exactly
    4096 bytes pass."""
    relay = start_relay(ws={"limits": {"max_record_size": 4096}})
    probe = relay.probe("tl", kinds=("stomp", "ws"))
    a = relay.ws_endpoint(AGENT)
    b = relay.stomp_endpoint(OTHER)
    ok = w.no_session_of_size(OTHER, AGENT, 4096)
    if how == "single-frame":
        a.send_record(ok)
    else:
        a.send_fragmented(ok, 4)
    assert b.recv_record() == ok
    big = w.no_session_of_size(OTHER, AGENT, 4097)
    if how == "single-frame":
        send_quietly(a.send_record, big)
    else:
        send_quietly(a.send_fragmented, big, 3)
    code, _ = a.expect_close()
    assert code == w.WS_TOO_BIG
    relay.wait_log(r'eid="%s" reason=drop_too_large' % AGENT)
    b.expect_nothing(0.1)
    probe.check()


def test_oversized_fragments_closed_before_all_sent(start_relay):
    """A fragmented message that grows past max_record_size is refused once it is past the
    bound: the relay does not wait for (or buffer) the rest of an endless message."""
    relay = start_relay(ws={"limits": {"max_record_size": 4096}})
    a = relay.ws_endpoint(AGENT)
    send_quietly(a.send_raw, w.ws_frame(w.WS_BINARY, b"\0" * 3000, fin=False))
    send_quietly(a.send_raw, w.ws_frame(w.WS_CONT, b"\0" * 3000, fin=False))
    code, _ = a.expect_close()      # no final frame was ever sent
    assert code == w.WS_TOO_BIG
    relay.wait_log(r"reason=drop_too_large")


def test_fragment_size_splits_outgoing_records(start_relay):
    """fragment_size = N: Records to a WS client come in frames of at most N payload
    bytes (first binary, then continuations) that reassemble to the exact Record; a
    Record no larger than N stays one frame."""
    n = 1000
    relay = start_relay(ws={"fragment_size": n}, limits=BIG_LIMITS)
    a = relay.ws_endpoint(AGENT)
    s = relay.stomp_endpoint(OTHER)
    for size in (10, n, n + 1, 5 * n, 123457, BIG):
        r = w.no_session_of_size(AGENT, OTHER, size)
        s.send_record(r)
        start = len(a.frames)
        op, got, nframes = a.recv_message(timeout=30)
        assert op == w.WS_BINARY and got == r, size
        sizes = a.last_frame_sizes
        assert max(sizes) <= n, (size, max(sizes))
        assert nframes == len(sizes) == max(1, -(-len(r) // n)), (size, nframes)
        ops = [f[0] for f in a.frames[start:]]
        assert ops == [w.WS_BINARY] + [w.WS_CONT] * (nframes - 1), ops[:5]
    # Records the client sends are not affected.
    up = w.no_session_of_size(OTHER, AGENT, 5 * n)
    a.send_record(up)
    assert s.recv_record() == up


# ----------------------------------------------------------------- pairs (R-WS.4)

def test_pair_sessions_controller_path_and_plain(relay):
    """§9.5: agent A holds a session on /usp/ctrl (the pair A-C) and one on /usp at the
    same time; C's Records come on the first, another controller's on the second, and A's
    answers from either reach their controller."""
    c = relay.stomp_endpoint(CTRL_EID)
    x = relay.stomp_endpoint(OTHER)
    a_c = relay.ws_endpoint(AGENT, path=WS_CTRL_PATH)
    a_p = relay.ws_endpoint(AGENT, path="/usp")
    for i in range(3):
        r = w.no_session(AGENT, CTRL_EID, b"from C %d" % i)
        c.send_record(r)
        assert a_c.recv_record() == r
        r = w.no_session(AGENT, OTHER, b"from X %d" % i)
        x.send_record(r)
        assert a_p.recv_record() == r
    a_c.expect_nothing(0.1)
    a_p.expect_nothing(0.1)
    up = w.no_session(CTRL_EID, AGENT, b"to C")
    a_c.send_record(up)
    assert c.recv_record() == up
    up = w.no_session(OTHER, AGENT, b"to X")
    a_p.send_record(up)
    assert x.recv_record() == up
    assert a_c.ping(b"alive") == b"alive" and a_p.ping(b"alive") == b"alive"


def test_pair_second_session_replaces_first(relay):
    """R-WS.4 / §9.11: a second session of A on /usp/ctrl replaces the first (Close 1008,
    endpoint_replaced logged); C's Records go to the new one; A's /usp session is not
    touched."""
    c = relay.stomp_endpoint(CTRL_EID)
    x = relay.stomp_endpoint(OTHER)
    a_p = relay.ws_endpoint(AGENT, path="/usp")
    first = relay.ws_endpoint(AGENT, path=WS_CTRL_PATH)
    second = relay.ws_endpoint(AGENT, path=WS_CTRL_PATH)
    code, _ = first.expect_close()
    assert code == w.WS_POLICY
    relay.wait_log(r'event=endpoint_replaced .*eid="%s"' % AGENT)
    r = w.no_session(AGENT, CTRL_EID, b"to the new one")
    c.send_record(r)
    assert second.recv_record() == r
    r = w.no_session(AGENT, OTHER, b"plain still there")
    x.send_record(r)
    assert a_p.recv_record() == r
    a_p.expect_nothing(0.1)


def test_failed_upgrade_does_not_take_over(relay):
    """An upgrade libwebsockets still rejects after the relay's own checks (here a
    subprotocol token too long for it, listed before v1.usp) must not replace the live
    session of the same pair: the ID is taken only when the 101 goes out."""
    c = relay.stomp_endpoint(CTRL_EID)
    live = relay.ws_endpoint(AGENT, path=WS_CTRL_PATH)
    try:   # libwebsockets hangs up without an HTTP answer
        bad = relay.ws_client(WS_CTRL_PATH, eid=AGENT, protocols=("x" * 70, "v1.usp"))
        assert bad.status != 101
    except w.Closed:
        pass
    live.stay_open(0.3)
    r = w.no_session(AGENT, CTRL_EID, b"still here")
    c.send_record(r)
    assert live.recv_record() == r
    assert relay.count_log(r"event=endpoint_replaced") == 0


def test_pair_refuse_new_gets_409(start_relay):
    """duplicate_id_policy = "refuse-new": the second /usp/ctrl upgrade of A is refused with
    HTTP 409; the first keeps working; a /usp session (another pair) is still allowed."""
    relay = start_relay(relay={"duplicate_id_policy": "refuse-new"})
    c = relay.stomp_endpoint(CTRL_EID)
    first = relay.ws_endpoint(AGENT, path=WS_CTRL_PATH)
    second = relay.ws_client(WS_CTRL_PATH, eid=AGENT)
    assert second.status == 409, (second.status, second.headers)
    assert second.header("sec-websocket-accept") is None
    r = w.no_session(AGENT, CTRL_EID, b"first kept")
    c.send_record(r)
    assert first.recv_record() == r
    plain = relay.ws_endpoint(AGENT, path="/usp")
    x = relay.stomp_endpoint(OTHER)
    r = w.no_session(AGENT, OTHER, b"plain ok")
    x.send_record(r)
    assert plain.recv_record() == r
    first.expect_nothing(0.1)


def test_pair_fallback_to_the_only_session(relay):
    """With only its /usp/ctrl session, A still gets another controller's Records on it;
    with only a /usp session, C's Records go there."""
    c = relay.stomp_endpoint(CTRL_EID)
    x = relay.stomp_endpoint(OTHER)
    a_c = relay.ws_endpoint(AGENT, path=WS_CTRL_PATH)
    r = w.no_session(AGENT, OTHER, b"X via the C session")
    x.send_record(r)
    assert a_c.recv_record() == r
    back = w.no_session(OTHER, AGENT, b"answer to X")
    a_c.send_record(back)
    assert x.recv_record() == back

    b_eid = "os::00256D-plainonly"
    b = relay.ws_endpoint(b_eid, path="/usp")
    r = w.no_session(b_eid, CTRL_EID, b"C via plain")
    c.send_record(r)
    assert b.recv_record() == r


# ----------------------------------------------------------------- controller on WS

def test_controller_over_websocket(relay):
    """A controller connected on /usp with its own eid gets Records from agents on STOMP,
    MQTT 5, MQTT 3.1.1, UDS and WebSocket, and its answers reach each of them."""
    ctrl_eid = "self::ws-ctrl"
    ctrl = relay.ws_endpoint(ctrl_eid)
    agents = {
        "os::ag-stomp": relay.stomp_endpoint("os::ag-stomp"),
        "os::ag-m5": relay.mqtt_endpoint("os::ag-m5"),
        "os::ag-m4": relay.mqtt_endpoint("os::ag-m4", level=4),
        "os::ag-uds": relay.uds_endpoint("os::ag-uds"),
        "os::ag-ws": relay.ws_endpoint("os::ag-ws"),
    }
    for eid, ag in agents.items():
        r = w.session_context(ctrl_eid, eid, [b"Notify " + eid.encode()])
        ag.send_record(r)
        got = ctrl.recv_record()
        assert got == r
        rec = w.decode_record(got)
        assert (rec.to_id, rec.from_id) == (ctrl_eid, eid)
        ans = w.session_context(eid, ctrl_eid, [b"NotifyResp"], sequence_id=2)
        ctrl.send_record(ans)
        assert ag.recv_record() == ans, eid
    ctrl.expect_nothing(0.1)


# ----------------------------------------------------------------- pings

def test_client_ping_answered_with_same_payload(relay):
    """RFC 6455 §5.5.2/3, R-WS.13: a Ping gets a Pong with its payload (empty, short, the
    125-byte maximum), and the session stays usable."""
    a = relay.ws_endpoint(AGENT)
    for payload in (b"", b"x", os.urandom(125)):
        assert a.ping(payload) == payload
    # Back to back in one segment: RFC 6455 §5.5.3 lets a peer skip Pongs for Pings it
    # had not answered yet. libwebsockets 4.1 answers the first and ignores every Ping
    # that arrives while that Pong is pending (even the latest), so only "some Pong of
    # the batch" is required here; once it came, a lone Ping must be answered again.
    before = len(a.pongs)
    sent = [b"p%d" % i for i in range(5)]
    a.send_raw(b"".join(w.ws_frame(w.WS_PING, p) for p in sent))
    end = time.monotonic() + 5
    while len(a.pongs) == before:
        assert time.monotonic() < end, "no Pong for a batch of 5 Pings"
        with pytest.raises(TimeoutError):
            a.recv_message(0.05)
    with pytest.raises(TimeoutError):
        a.recv_message(0.2)                 # let the rest of the batch be answered or not
    got = a.pongs[before:]
    assert set(got) <= set(sent) and got == sorted(set(got)), got
    assert a.ping(b"lone") == b"lone"
    s = relay.stomp_endpoint(OTHER)
    r = w.no_session(OTHER, AGENT, b"after pings")
    a.send_record(r)
    assert s.recv_record() == r


def test_relay_pings_idle_clients_and_drops_silent_ones(start_relay):
    """ping_interval = 1, ping_timeout = 1: an idle client is pinged; one that answers
    stays open (3.5 s here) and usable; one that never answers is closed (TCP) within
    about 4 s."""
    relay = start_relay(ws={"ping_interval": 1, "ping_timeout": 1})
    t0 = time.monotonic()
    good = relay.ws_endpoint(AGENT)
    mute = relay.ws_endpoint("os::00256D-mute", auto_pong=False)
    good.stay_open(3.5)
    assert len(good.pings) >= 2, good.pings
    # The mute client read nothing so far: what the relay sent sits in our socket buffer.
    pings = 0
    closed = False
    try:
        while True:
            f = mute.recv_frame(timeout=0.5)
            pings += f.opcode == w.WS_PING
    except w.Closed:
        closed = True
    except TimeoutError:
        pass
    assert closed, "a client that never answers Pings was not closed within %.1f s" % (
        time.monotonic() - t0)
    assert pings >= 1, "closed without being pinged"
    s = relay.stomp_endpoint(OTHER)
    r = w.no_session(AGENT, OTHER, b"still here")
    s.send_record(r)
    assert good.recv_record() == r


def test_no_pings_by_default_within_interval(relay):
    """With the default interval (30 s) an idle client sees no Ping in 1.5 s, and a client
    that never pongs is kept."""
    a = relay.ws_endpoint(AGENT, auto_pong=False)
    a.stay_open(1.5)
    assert a.pings == []


# ----------------------------------------------------------------- timeouts, shutdown

def test_handshake_timeout(start_relay):
    """limits.handshake_timeout = 0.5 s: a connection that sends nothing, or half a
    request, is closed within 2 s; an upgraded session is not subject to it."""
    relay = start_relay(limits={"handshake_timeout": 0.5})
    t0 = time.monotonic()
    idle = socket.create_connection(("127.0.0.1", relay.ws_port), 2)
    half = socket.create_connection(("127.0.0.1", relay.ws_port), 2)
    half.sendall(b"GET /usp?eid=os%3A%3Ahalf HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
    a = relay.ws_endpoint(AGENT)
    for s in (idle, half):
        s.settimeout(max(0.05, t0 + 2.0 - time.monotonic()))
        try:
            while s.recv(65536):
                pass
        except socket.timeout:
            raise AssertionError("connection still open %.1f s after connect" % (
                time.monotonic() - t0)) from None
        except ConnectionResetError:
            pass
        s.close()
    a.stay_open(max(0.0, t0 + 1.5 - time.monotonic()))
    peer = relay.stomp_endpoint(OTHER)
    r = w.no_session(OTHER, AGENT, b"upgraded sessions stay")
    a.send_record(r)
    assert peer.recv_record() == r


def test_sigterm_closes_sessions_with_1001(relay):
    """SIGTERM: every WebSocket session (plain and controller path) gets Close 1001 and
    the relay exits 0."""
    a = relay.ws_endpoint(AGENT)
    b = relay.ws_endpoint("os::00256D-term", path=WS_CTRL_PATH)
    r = w.no_session("os::00256D-term", AGENT, b"before the end")
    a.send_record(r)
    assert b.recv_record() == r
    relay.send_signal(signal.SIGTERM)
    for c in (a, b):
        code, _ = c.expect_close(timeout=5)
        assert code == w.WS_GOING_AWAY
    assert relay.stop() == 0
    c = relay.stopped_counters()
    assert (c["records_in"], c["records_out"]) == (1, 1)


# ----------------------------------------------------------------- 500 sessions

class Pump:
    """Drives many upgraded WsClients from one thread with a selector: queued output is
    written as the sockets take it, input is parsed into messages (Pings answered)."""

    def __init__(self, clients):
        self.sel = selectors.DefaultSelector()
        self.st = []
        for c in clients:
            c.sock.setblocking(False)
            st = {"i": len(self.st), "c": c, "out": bytearray(), "in": bytearray(c.buf),
                  "got": [], "parts": []}
            c.buf.clear()
            self.st.append(st)
            self.sel.register(c.sock, selectors.EVENT_READ, st)

    def queue(self, i, data):
        st = self.st[i]
        if not st["out"]:
            self.sel.modify(st["c"].sock, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
        st["out"] += data

    def _input(self, st):
        data = st["c"].sock.recv(1 << 16)
        if not data:
            raise AssertionError("relay closed %s" % st["c"].eid)
        st["in"] += data
        while True:
            got = w.ws_parse_frame(st["in"])
            if not got:
                return
            f, used = got
            del st["in"][:used]
            assert not f.masked and f.rsv == 0, f
            if f.opcode == w.WS_PING:
                self.queue(st["i"], w.ws_frame(w.WS_PONG, f.payload))
            elif f.opcode == w.WS_CLOSE:
                raise AssertionError("Close %r for %s" % (w.ws_parse_close(f.payload),
                                                         st["c"].eid))
            elif f.opcode in (w.WS_BINARY, w.WS_CONT):
                st["parts"].append(f.payload)
                if f.fin:
                    st["got"].append(b"".join(st["parts"]))
                    st["parts"] = []
            elif f.opcode != w.WS_PONG:
                raise AssertionError("unexpected %r" % f)

    def run(self, done, timeout):
        end = time.monotonic() + timeout
        while not done():
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("pump timed out")
            for key, mask in self.sel.select(min(left, 0.5)):
                st = key.data
                if mask & selectors.EVENT_READ:
                    self._input(st)
                if mask & selectors.EVENT_WRITE and st["out"]:
                    try:
                        n = st["c"].sock.send(st["out"])
                    except BlockingIOError:
                        n = 0
                    del st["out"][:n]
                    if not st["out"]:
                        self.sel.modify(st["c"].sock, selectors.EVENT_READ, st)

    def close(self):
        self.sel.close()


def test_500_concurrent_sessions_exactly_once_in_order(start_relay):
    """250 agents and 250 controllers on WebSocket, each pair exchanging 20 Records each
    way at once: every Record is delivered exactly once, in order per sender, and the
    relay's counters agree (nothing dropped)."""
    pairs, k = 250, 20
    relay = start_relay()
    agents = ["os::load-a%03d" % i for i in range(pairs)]
    ctrls = ["self::load-c%03d" % i for i in range(pairs)]
    eids = agents + ctrls
    peer = {a: c for a, c in zip(agents, ctrls)}
    peer.update({c: a for a, c in zip(agents, ctrls)})
    clients = [relay.ws_endpoint(e, timeout=10) for e in eids]
    pump = Pump(clients)
    for i, e in enumerate(eids):
        pump.queue(i, b"".join(w.ws_frame(w.WS_BINARY, w.no_session(peer[e], e, b"%s %06d" % (
            e.encode(), n))) for n in range(k)))
    t0 = time.monotonic()
    pump.run(lambda: all(len(st["got"]) >= k for st in pump.st), 25)
    elapsed = time.monotonic() - t0
    for st in pump.st:
        me = st["c"].eid
        seqs = []
        for raw in st["got"]:
            rec = w.decode_record(raw)
            assert (rec.to_id, rec.from_id) == (me, peer[me]), (me, rec)
            who, n = rec.payload.split(b" ")
            assert who.decode() == peer[me]
            seqs.append(int(n))
        assert seqs == list(range(k)), (me, seqs)
    # Nothing more arrives.
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        for key, mask in pump.sel.select(0.05):
            pump._input(key.data)
    assert all(len(st["got"]) == k for st in pump.st)
    pump.close()
    relay.close_clients()
    assert relay.stop() == 0
    c = relay.stopped_counters()
    total = len(eids) * k
    assert (c["records_in"], c["records_out"], c["drop_no_route"], c["drop_spoofed"],
            c["drop_malformed"], c["drop_queue_full"]) == (total, total, 0, 0, 0, 0), c
    print("500 sessions: %d Records in %.2f s" % (total, elapsed))


# ----------------------------------------------------------------- MQTT over WebSocket

@pytest.mark.parametrize("level", [5, 4], ids=["v5", "v311"])
def test_mqtt_over_websocket(relay, level):
    """Subprotocol "mqtt" (no eid needed) runs an MQTT session with the "mqtt" listener's
    settings inside binary messages: CONNECT as an endpoint, SUBSCRIBE, a Record from a
    STOMP endpoint arrives and the answer gets back."""
    eid = "os::mqtt-over-ws-%d" % level
    ws = relay.ws_client("/usp", eid=None, protocols=("mqtt",))
    assert ws.status == 101, (ws.status, ws.headers, ws.body)
    assert ws.subprotocol == "mqtt"
    m = relay.track(w.MqttClient(None, sock=w.WsStream(ws), level=level))
    if level == 5:
        p = m.connect("", eid=eid, request_response_info=True)
        assert p.user_prop("subscribe-topic") == "usp/endpoint/" + eid
        topic = m.topic
    else:
        m.connect(eid)
        m.eid, m.topic = eid, w.mqtt_topic(eid)
        topic = m.topic + "/#"
    assert m.subscribe(topic) == [1]
    s = relay.stomp_endpoint(OTHER)
    r = w.no_session(eid, OTHER, b"over mqtt over ws")
    s.send_record(r)
    pub = m.recv_publish()
    assert pub.payload == r
    assert pub.topic.startswith("usp/endpoint/" + eid)
    back = w.no_session(OTHER, eid, b"answer")
    if level == 5:
        assert m.send_record(back, pub.props[w.P_RESPONSE_TOPIC], qos=1).reason == 0
    else:
        m.send_record(back, pub.topic.rsplit("/reply-to=", 1)[1].replace("%2F", "/"))
    assert s.recv_record() == back
    m.ping()


def test_mqtt_over_websocket_last_words_delivered(relay):
    """A client that sends its last PUBLISHes, DISCONNECT and the Close all at once and
    hangs up still has its PUBLISHes delivered: the relay flushes what the client sent
    into the MQTT session before the pipe to it closes."""
    eid = "os::mqtt-ws-lastwords"
    peer = relay.ws_endpoint("self::lastwords-peer")
    ws = relay.ws_client("/usp", eid=None, protocols=("mqtt",))
    m = relay.track(w.MqttClient(None, sock=w.WsStream(ws), level=5))
    m.connect("", eid=eid)
    recs = [w.no_session("self::lastwords-peer", eid, b"last %d" % i) for i in range(10)]
    burst = b"".join(w.ws_frame(w.WS_BINARY, w.mqtt_publish_packet("usp/endpoint/x", r))
                     for r in recs)
    burst += w.ws_frame(w.WS_BINARY, w.mqtt_packet(w.MQTT_DISCONNECT, 0, b"\x00"))
    burst += w.ws_frame(w.WS_CLOSE, w.ws_close_body(w.WS_NORMAL, ""))
    ws.send_raw(burst)
    ws.close()
    for r in recs:
        assert peer.recv_record() == r


def test_mqtt_subprotocol_refused_without_mqtt_listener(start_relay):
    """Without mqtt_listener, subprotocol "mqtt" alone is refused (400); v1.usp works."""
    relay = start_relay(ws={"mqtt_listener": None})
    c = relay.ws_client("/usp", eid=None, protocols=("mqtt",))
    assert c.status == 400, (c.status, c.headers)
    assert c.header("sec-websocket-accept") is None
    a = relay.ws_endpoint(AGENT)
    assert a.ping(b"ok") == b"ok"
