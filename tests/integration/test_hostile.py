"""Hostile and broken input (spec notes §9 items 1, 15, 25): each case ends in the MTP's
error reaction (STOMP ERROR then close, UDS Error TLV then close) or is ignored, and each
is followed by a check that other clients are still served."""

import os
import struct
import threading
import time

import pytest

import uspwire as w

MAX_RECORD = 65536
MAX_UNIDENTIFIED = 2048


@pytest.fixture
def hrelay(start_relay):
    return start_relay(limits={"max_record_size": MAX_RECORD,
                               "max_unidentified_input": MAX_UNIDENTIFIED,
                               "handshake_timeout": 30.0})


@pytest.fixture
def probe(hrelay):
    return hrelay.probe()


# ----------------------------------------------------------------- STOMP

@pytest.mark.parametrize("garbage", [
    b"GARBAGE\n\n\0",
    b"connect\naccept-version:1.2\n\n\0",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),   # a TLS ClientHello
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
])
def test_stomp_garbage(hrelay, probe, garbage):
    c = hrelay.stomp_client()
    c.send_raw(garbage)
    err = c.expect_error_close()
    assert "malformed frame" in err["message"] or "CONNECT" in err["message"]
    probe.check()


def test_stomp_garbage_after_connect(hrelay, probe):
    c = hrelay.stomp_endpoint("self::bad")
    c.send_raw(b"SEND\ndestination:/x\nbroken-header-line\n\n\0")
    err = c.expect_error_close()
    assert "malformed frame" in err["message"]
    hrelay.wait_log(r'event=conn_close .*eid="self::bad" reason=protocol_error')
    probe.check()


@pytest.mark.parametrize("connected", [False, True])
def test_stomp_truncated_frame_then_client_close(hrelay, probe, connected):
    c = hrelay.stomp_client()
    if connected:
        c.connect("self::trunc")
        c.send_raw(b"SEND\ndestination:/usp/endpoint/x\ncontent-length:1000\n\n" + b"x" * 100)
    else:
        c.send_raw(b"STOMP\naccept-version:1.2\nendpoint-id:self::tr")
    c.close()
    hrelay.wait_log(r"event=conn_close .*reason=peer_closed")
    probe.check()


def test_stomp_content_length_over_limit(hrelay, probe):
    """A connected client's SEND above max_record_size: the Record is dropped and
    counted (spec notes §9.8), the session stays up, the body is discarded as it comes
    (never buffered whole), and the next Record on the same session goes through."""
    c = hrelay.stomp_endpoint("self::big")
    big = MAX_RECORD * 4
    c.send_raw(b"SEND\ndestination:/usp/endpoint/x\nreceipt:big\ncontent-length:%d\n\n" % big)
    for _ in range(4):
        c.send_raw(b"\x07" * MAX_RECORD)
    c.send_raw(b"\0")
    assert c.recv_frame()["receipt-id"] == "big"
    hrelay.wait_log(r'eid="self::big" reason=drop_too_large')
    r = w.no_session(probe.u.eid, "self::big", b"after the big one")
    c.send_record(r)
    assert probe.u.recv_record() == r
    probe.check()


def test_stomp_oversized_body_must_end_in_nul(hrelay, probe):
    """The discarded body is still framed: a missing NUL after it is a protocol error."""
    c = hrelay.stomp_endpoint("self::big")
    c.send_raw(b"SEND\ndestination:/usp/endpoint/x\ncontent-length:%d\n\n" % (MAX_RECORD + 1) +
               b"\x01" * (MAX_RECORD + 2))
    err = c.expect_error_close()
    assert "no_nul" in err["message"]
    probe.check()


def test_stomp_content_length_over_limit_before_connect(hrelay, probe):
    """Before CONNECT nothing is skipped: the declared size alone gets ERROR and close."""
    c = hrelay.stomp_client()
    c.send_raw(b"CONNECT\naccept-version:1.2\nendpoint-id:self::x\ncontent-length:%d\n\n"
               % (MAX_RECORD + 1))
    c.expect_error_close()
    probe.check()


def test_stomp_body_without_content_length_over_limit(hrelay, probe):
    c = hrelay.stomp_endpoint("self::big")
    c.send_raw(b"SEND\ndestination:/usp/endpoint/x\n\n" + b"\x01" * (MAX_RECORD + 10))
    err = c.expect_error_close()
    assert "body_too_large" in err["message"]
    probe.check()


def test_stomp_content_length_at_limit_ok(hrelay, probe):
    """The bound is inclusive: a Record of exactly max_record_size passes."""
    a = hrelay.stomp_endpoint("self::big")
    pad = MAX_RECORD
    while len(w.no_session(probe.u.eid, "self::big", b"p" * pad)) > MAX_RECORD:
        pad -= 1
    r = w.no_session(probe.u.eid, "self::big", b"p" * pad)
    assert len(r) == MAX_RECORD
    a.send_record(r)
    assert probe.u.recv_record() == r
    # One byte more is dropped and counted; the session stays.
    r2 = w.no_session(probe.u.eid, "self::big", b"p" * (pad + 1))
    assert len(r2) == MAX_RECORD + 1
    a.send_record(r2)
    hrelay.wait_log(r'eid="self::big" reason=drop_too_large')
    probe.u.expect_nothing(0.1)
    a.send_record(r)
    assert probe.u.recv_record() == r
    probe.check()


def test_uds_record_size_limit(hrelay, probe):
    """On UDS a Record just over max_record_size fits the frame slack but is dropped, not
    delivered; one at the limit passes."""
    u = hrelay.uds_endpoint("self::bigu")
    pad = MAX_RECORD
    while len(w.no_session(probe.s.eid, "self::bigu", b"q" * pad)) > MAX_RECORD:
        pad -= 1
    r = w.no_session(probe.s.eid, "self::bigu", b"q" * pad)
    u.send_record(w.no_session(probe.s.eid, "self::bigu", b"q" * (pad + 1)))
    u.send_record(r)
    assert probe.s.recv_record() == r
    probe.s.expect_nothing(0.1)
    hrelay.wait_log(r"reason=drop_too_large")
    probe.check()


def test_stomp_too_much_before_connect(hrelay, probe):
    c = hrelay.stomp_client()
    # An unfinished head longer than max_unidentified_input (but within max_frame_head).
    c.send_raw(b"STOMP\naccept-version:1.2\nx-pad:" + b"a" * (MAX_UNIDENTIFIED + 100))
    err = c.expect_error_close()
    assert "before CONNECT" in err["message"]
    probe.check()


def test_stomp_head_too_large(hrelay, probe):
    c = hrelay.stomp_endpoint("self::head")
    c.send_raw(b"SEND\ndestination:/x\nx-pad:" + b"a" * 20000)
    err = c.expect_error_close()
    assert "head_too_large" in err["message"]
    probe.check()


def test_stomp_slow_drip_connect(hrelay, probe):
    """A valid STOMP frame one byte per 100 ms: the relay waits for it (within the
    handshake timeout) and serves others meanwhile."""
    frame = b"STOMP\naccept-version:1.2\nendpoint-id:self::d\n\n\0"
    assert len(frame) < 64
    c = hrelay.stomp_client(timeout=30)
    u = hrelay.uds_client()
    uds_hs = w.uds_frame([(w.TLV_HANDSHAKE, "self::drip-u")])
    errors = []

    def drip(sock, data):
        try:
            for i in range(len(data)):
                sock.send_raw(data[i:i + 1])
                time.sleep(0.1)        # the point of the test: a slow peer
        except Exception as e:          # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=drip, args=(c, frame)),
               threading.Thread(target=drip, args=(u, uds_hs))]
    for t in threads:
        t.start()
    checks = 0
    while any(t.is_alive() for t in threads):
        probe.check()
        checks += 1
        time.sleep(0.2)
    for t in threads:
        t.join()
    assert not errors, errors
    assert checks >= 5
    f = c.recv_frame()
    assert f.cmd == "CONNECTED" and f["subscribe-dest"] == "/usp/endpoint/self%3A%3Ad"
    t, v = u.recv_tlv()
    assert (t, v) == (w.TLV_HANDSHAKE, b"self::usprelay")
    # Both dripped sessions work.
    c.dest = f["subscribe-dest"]
    c.subscribe()
    r = w.no_session("self::d", "self::drip-u", b"after the drip")
    u.send_record(r)
    assert c.recv_record() == r


def test_handshake_timeout(start_relay):
    relay = start_relay(limits={"handshake_timeout": 0.3})
    p = relay.probe()
    s = relay.stomp_client()
    u = relay.uds_client()
    s.send_raw(b"STOMP\n")
    err = s.expect_error_close(timeout=3)
    assert "handshake timeout" in err["message"]
    assert "handshake timeout" in u.expect_error_close(timeout=3)
    # Established sessions are not affected by the timer.
    p.check()


# ----------------------------------------------------------------- UDS

def _hs(eid):
    return w.uds_frame([(w.TLV_HANDSHAKE, eid)])


@pytest.mark.parametrize("handshaken", [False, True])
def test_uds_bad_sync(hrelay, probe, handshaken):
    u = hrelay.uds_client()
    if handshaken:
        u.handshake("self::sync")
    u.send_raw(b"_USQ\x00\x00\x00\x05\x01\x00\x00\x00\x00")
    assert "bad frame" in u.expect_error_close()
    probe.check()


@pytest.mark.parametrize("handshaken", [False, True])
def test_uds_length_over_limit(hrelay, probe, handshaken):
    u = hrelay.uds_client()
    if handshaken:
        u.handshake("self::len")
        n = MAX_RECORD + 4096 + 1
    else:
        n = MAX_UNIDENTIFIED + 1
    u.send_raw(w.UDS_SYNC + struct.pack(">I", n))   # header only: refused on its own
    assert "bad frame" in u.expect_error_close()
    probe.check()


@pytest.mark.parametrize("body", [
    struct.pack(">BI", w.TLV_RECORD, 100) + b"x" * 10,          # value past the frame
    struct.pack(">BI", w.TLV_HANDSHAKE, 5) + b"self:" + b"\x03\x00",  # half a TLV header
])
def test_uds_tlv_overrun(hrelay, probe, body):
    u = hrelay.uds_client()
    u.handshake("self::overrun")
    u.send_raw(w.UDS_SYNC + struct.pack(">I", len(body)) + body)
    assert "bad frame" in u.expect_error_close()
    probe.check()


@pytest.mark.parametrize("record", [
    b"\xff\xff\xff",
    b"",
    w.no_session("", "self::unx", b"no to_id"),
    w.no_session("self::probe-s", "self::unx", b"truncated")[:-3],
    w.no_session("self::probe-s", "self::unx", b"x") + w.f_bytes(2, "self::dup"),
])
def test_uds_unextractable_record(hrelay, probe, record):
    u = hrelay.uds_client()
    u.handshake("self::unx")
    u.send_record(record)
    assert "cannot extract USP Record" in u.expect_error_close()
    probe.s.expect_nothing(0.1)
    probe.check()


def test_uds_record_before_handshake_ignored(hrelay, probe):
    u = hrelay.uds_client()
    early = w.no_session(probe.s.eid, "self::early", b"too early")
    u.send_record(early)
    assert u.handshake("self::early") == "self::usprelay"
    late = w.no_session(probe.s.eid, "self::early", b"in time")
    u.send_record(late)
    assert probe.s.recv_record() == late      # the early one never arrives
    probe.s.expect_nothing(0.2)
    # Unknown TLV types and repeated handshakes are ignored as well.
    u.send_tlvs([(9, b"whatever"), (w.TLV_HANDSHAKE, "self::other"), (w.TLV_RECORD, late)])
    assert probe.s.recv_record() == late
    u.expect_nothing(0.1)
    probe.check()


def test_uds_bad_handshake(hrelay, probe):
    u = hrelay.uds_client()
    u.send_handshake("no-id")
    assert "invalid endpoint id" in u.expect_error_close()
    probe.check()


def test_uds_peer_error_tlv_closes(hrelay, probe):
    u = hrelay.uds_endpoint("self::err")
    u.send_tlvs([(w.TLV_ERROR, "bye")])
    assert u.wait_closed() == b""
    hrelay.wait_log(r'event=uds_peer_error .*eid="self::err" text="bye"')
    probe.check()


def test_random_bytes_both_mtps(hrelay, probe):
    """A few blobs of random bytes: whatever the relay makes of them, it survives."""
    for i in range(8):
        blob = os.urandom(200 + 300 * i)
        s = hrelay.stomp_client()
        s.send_raw(blob)
        u = hrelay.uds_client()
        u.send_raw(b"_USP" + blob if i % 2 else blob)
        s.close()
        u.close()
    probe.check()


def test_slow_consumer_bounded(start_relay):
    """A subscriber that stops reading: its output queue stays within max_output_queue
    (excess Records are dropped and counted), the sender and everyone else are served,
    and what the sink does get later is in order."""
    relay = start_relay(limits={"max_record_size": 65536, "max_output_queue": 131072})
    p = relay.probe()
    sink = relay.stomp_client()
    sink.connect("self::sink")
    sink.subscribe()
    src = relay.uds_endpoint("self::src")
    n = 400                     # 24 MB: more than kernel socket buffers hold
    for i in range(n):
        src.send_record(w.no_session("self::sink", "self::src", b"%05d" % i + b"s" * 60000))
    relay.wait_log(r'event=record_dropped .*eid="self::sink" reason=drop_queue_full', 15)
    p.check()
    src.send_record(w.no_session("self::sink", "self::src", b"END"))
    got = []
    while True:
        d = w.decode_record(sink.recv_record(timeout=15))
        if d.payload == b"END":
            break
        got.append(int(d.payload[:5]))
    assert got == sorted(got) and len(set(got)) == len(got)
    assert 0 < len(got) < n
