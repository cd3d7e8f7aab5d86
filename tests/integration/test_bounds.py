"""Resource bounds a hostile or broken peer must not get past: output it provokes but
never reads, connection count, and routes learned from STOMP destinations."""
import os
import re
import signal
import socket
import time

import uspwire as w

A, B, C, X = "self::bound-a", "self::bound-b", "self::bound-c", "os::00256D-offline"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def test_unread_receipts_do_not_grow_memory(start_relay):
    """A client asking for RECEIPTs (each with a long receipt id) and never reading
    them: past max_output_queue the relay stops reading that client instead of
    queueing without end, and keeps serving everyone else."""
    relay = start_relay(limits={"max_record_size": 65536, "max_output_queue": 262144})
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    hog = relay.stomp_client()
    hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect("self::hog")
    base = rss_kib(relay.proc.pid)
    frame = w.stomp_frame("SUBSCRIBE", [("id", "0"), ("destination", w.endpoint_dest("self::hog")),
                                        ("receipt", "r" * 8000)])
    hog.sock.setblocking(False)
    sent, deadline = 0, time.monotonic() + 4
    while time.monotonic() < deadline:
        try:
            sent += hog.sock.send(frame * 16)
        except BlockingIOError:
            time.sleep(0.01)  # the relay stopped reading us: that is the point
    hog.sock.setblocking(True)
    assert sent > 2 * 262144, "the relay should have read a while before pausing"
    # Reading on without a bound takes hundreds of MB in 4 s on loopback; paused, only the
    # kernel's socket buffers and the relay's bounded buffers fill. (RSS is compared
    # loosely: a sanitizer build keeps freed memory in quarantine.)
    assert sent < 48 << 20, "relay kept reading: %d bytes taken" % sent
    grown = rss_kib(relay.proc.pid) - base
    assert grown < 48 * 1024, "relay grew by %d KiB while %d bytes were pushed" % (grown, sent)
    r = w.no_session(A, B, b"still served")
    b.send_record(r)
    assert a.recv_record() == r


def test_learned_route_is_scoped_to_its_sender(relay):
    """B addresses the absent X through A's destination: A takes X's Records from B
    only. C's Records for X must not be captured by A."""
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    c = relay.stomp_endpoint(C)
    r1 = w.no_session(X, B, b"via a")
    b.send_record(r1, dest=a.dest)
    assert a.recv_record() == r1
    r2 = w.no_session(X, B, b"learned for b")
    b.send_record(r2, dest="/usp/endpoint/elsewhere")
    assert a.recv_record() == r2
    mark = len(relay.log())
    c.send_record(w.no_session(X, C, b"not for a"), dest="/usp/endpoint/elsewhere")
    relay.wait_log(r'eid="%s" reason=drop_no_route' % re.escape(C), start=mark)
    a.expect_nothing(0.2)


def test_max_connections(start_relay):
    relay = start_relay(relay={"max_connections": 6})
    # The readiness probe may still be closing: wait until its slot is free.
    relay.wait_log(r"event=conn_close")
    held = [relay.stomp_endpoint("self::held-%d" % i) for i in range(6)]
    extra = relay.stomp_client()
    assert extra.is_closed(2.0), "connection over max_connections was kept"
    relay.wait_log(r"event=conn_rejected .*reason=max_connections limit=6")
    held[0].disconnect(receipt="bye")
    held[0].wait_closed()
    relay.wait_log(r'event=conn_close .*eid="self::held-0"')
    again = relay.stomp_endpoint("self::held-again")
    r = w.no_session("self::held-again", "self::held-1", b"ok")
    held[1].send_record(r)
    assert again.recv_record() == r


def test_credentials_compared_raw_or_unescaped(start_relay):
    """STOMP 1.2 does not escape CONNECT headers: a passcode with a backslash sent raw
    (as stomp.py does) is accepted, and so is the escaped spelling."""
    relay = start_relay(stomp={"login": "op", "passcode": "pa\\ss:w"})
    raw = relay.stomp_client()
    raw.send_raw(b"CONNECT\naccept-version:1.2\nendpoint-id:self::raw\nlogin:op\n"
                 b"passcode:pa\\ss:w\n\n\0")
    assert raw.recv_frame().cmd == "CONNECTED"
    esc = relay.stomp_client()
    esc.send_raw(b"CONNECT\naccept-version:1.2\nendpoint-id:self::esc\nlogin:op\n"
                 b"passcode:pa\\\\ss\\cw\n\n\0")
    assert esc.recv_frame().cmd == "CONNECTED"
    bad = relay.stomp_client()
    bad.send_raw(b"CONNECT\naccept-version:1.2\nendpoint-id:self::bad\nlogin:op\n"
                 b"passcode:pa\\ss:x\n\n\0")
    assert "authentication failed" in bad.expect_error_close()["message"]


def test_error_frame_has_receipt_id_and_content_length(relay):
    c = relay.stomp_endpoint(A)
    c.send_frame("BEGIN", [("transaction", "t1"), ("receipt", "r-begin")])
    err = c.recv_frame()
    assert err.cmd == "ERROR"
    assert err["receipt-id"] == "r-begin"
    assert int(err["content-length"]) == len(err.body)
    assert err.body.decode() == err["message"]
    c.wait_closed()


def test_uds_self_addressed_record_closes(relay):
    """§9.1: a Record with to_id == from_id is unextractable; on UDS that is an
    Error TLV and close."""
    u = relay.uds_endpoint("os::00256D-self")
    u.send_record(w.no_session("os::00256D-self", "os::00256D-self", b"me"))
    assert "to_id equals from_id" in u.expect_error_close()
    relay.wait_log(r"reason=drop_self_addressed")


def test_sighup_keeps_running(relay):
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    relay.send_signal(signal.SIGHUP)
    relay.wait_log(r"event=signal signal=HUP action=reload")
    assert relay.proc.poll() is None
    r = w.no_session(A, B, b"after hup")
    b.send_record(r)
    assert a.recv_record() == r


def test_stop_signal_during_startup_exits_zero(start_relay):
    """SIGTERM while listeners are already open but the handlers may not be in place yet
    must still be a clean stop with status 0, never death by the signal."""
    relay = start_relay(wait_ready=False)
    relay.wait_log(r"event=listener_open")
    relay.send_signal(signal.SIGTERM)
    assert relay.wait_exit() == 0
    assert not os.path.exists(relay.uds_path)
