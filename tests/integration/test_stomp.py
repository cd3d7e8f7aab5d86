"""STOMP 1.2 server behaviour (spec notes §4, §9 items 13-17): STOMP<->STOMP delivery and
MESSAGE headers, protocol errors (ERROR then close), version negotiation, credentials,
receipts, DISCONNECT, heart-beats both ways, and delivery by a learned destination."""

import time

import pytest

import uspwire as w

A = "self::alice"
B = "self::bob"


def _check_message(m, receiver, sender_dest, record):
    assert m.cmd == "MESSAGE"
    assert m["destination"] == receiver.dest
    assert m["subscription"] == receiver.sub_id
    assert m["content-type"] == w.USP_CONTENT_TYPE
    assert m["content-length"] == str(len(record))
    assert m["reply-to-dest"] == sender_dest
    assert m["message-id"]
    assert m.body == record


def test_two_stomp_clients_both_ways(relay):
    a = relay.stomp_endpoint(A)
    b = relay.stomp_client()
    b.connect(B, escape_eid=True)          # USP escapes ':' as \c in endpoint-id
    assert b.dest == "/usp/endpoint/self%3A%3Abob"
    b.subscribe(sub_id="bobs-sub")
    ids = set()

    # No reply-to-dest from the sender: the relay names the sender's subscription.
    r1 = w.no_session(B, A, b"hello bob \x00\xff")
    a.send_record(r1, reply_to="")
    m = b.recv_message()
    _check_message(m, b, a.dest, r1)
    ids.add(m["message-id"])

    r2 = w.no_session(A, B, b"hello alice")
    b.send_record(r2)
    m = a.recv_message()
    _check_message(m, a, b.dest, r2)
    assert m["subscription"] == "sub-0"

    # Several in a row keep their order and get distinct message-ids.
    recs = [w.no_session(B, A, b"seq %d" % i) for i in range(20)]
    for r in recs:
        a.send_record(r)
    for r in recs:
        m = b.recv_message()
        _check_message(m, b, a.dest, r)
        assert m["message-id"] not in ids
        ids.add(m["message-id"])
    a.expect_nothing(0.1)
    b.expect_nothing(0.1)


def test_unsubscribed_client_gets_nothing(relay):
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B, subscribe=False)
    a.send_record(w.no_session(B, A, b"dropped"))
    relay.wait_log(r"event=record_dropped .*reason=drop_not_subscribed")
    b.subscribe()
    r = w.no_session(B, A, b"after subscribe")
    a.send_record(r)
    assert b.recv_record() == r        # the earlier one was dropped, not queued
    # UNSUBSCRIBE (with receipt) stops delivery again.
    b.send_frame("UNSUBSCRIBE", [("id", "sub-0"), ("receipt", "u1")])
    b.expect_receipt("u1")
    a.send_record(w.no_session(B, A, b"dropped again"))
    b.expect_nothing(0.3)


def test_subscribe_foreign_destination_refused(relay):
    b = relay.stomp_endpoint(B)
    a = relay.stomp_client()
    a.connect(A)
    a.send_frame("SUBSCRIBE", [("id", "0"), ("destination", b.dest), ("ack", "auto")])
    err = a.expect_error_close()
    assert "subscription allowed only to" in err["message"]
    # b still owns its destination
    c = relay.stomp_endpoint("self::carol")
    r = w.no_session(B, "self::carol", b"x")
    c.send_record(r)
    assert b.recv_record() == r


def test_subscribe_other_destination_allowed_when_configured(start_relay):
    relay = start_relay(stomp={"allow_any_subscribe": True})
    a = relay.stomp_endpoint(A, subscribe=False)
    a.subscribe("/usp/group/1", sub_id="g")
    b = relay.stomp_endpoint(B)
    # to_id unknown: the SEND destination finds the subscriber.
    r = w.no_session("self::group1", B, b"to the group")
    b.send_record(r, dest="/usp/group/1")
    m = a.recv_message()
    assert m.body == r and m["destination"] == "/usp/group/1" and m["subscription"] == "g"


@pytest.mark.parametrize("cmd,headers", [
    ("BEGIN", [("transaction", "t1")]),
    ("COMMIT", [("transaction", "t1")]),
    ("ABORT", [("transaction", "t1")]),
    ("ACK", [("id", "1")]),
    ("NACK", [("id", "1")]),
])
def test_transactions_and_acks_refused(relay, cmd, headers):
    a = relay.stomp_endpoint(A)
    a.send_frame(cmd, headers)
    err = a.expect_error_close()
    assert cmd in err["message"]
    assert err.body.decode() == err["message"]
    relay.wait_log(r"event=conn_close .*eid=\"self::alice\" reason=protocol_error")


@pytest.mark.parametrize("cmd", ["SEND", "SUBSCRIBE", "DISCONNECT", "UNSUBSCRIBE"])
def test_frame_before_connect(relay, cmd):
    a = relay.stomp_client()
    a.send_frame(cmd, [("destination", "/usp/endpoint/x"), ("id", "0")], b"")
    err = a.expect_error_close()
    assert "CONNECT" in err["message"]


@pytest.mark.parametrize("versions", ["1.0,1.1", "1.1", "1.20", None])
def test_accept_version_without_1_2(relay, versions):
    a = relay.stomp_client()
    f = a.connect(A, accept_version=versions, expect="ERROR")
    assert f["version"] == "1.2"
    a.wait_closed()
    # 1.2 among others is fine
    b = relay.stomp_client()
    f = b.connect(B, accept_version="1.0,1.1, 1.2")
    assert f["version"] == "1.2"


def test_connect_frame_also_accepted(relay):
    a = relay.stomp_client()
    f = a.connect(A, cmd="CONNECT")
    assert f["subscribe-dest"] == "/usp/endpoint/self%3A%3Aalice"


@pytest.mark.parametrize("eid,why", [
    (None, "endpoint-id header is required"),
    ("not-an-id", "invalid endpoint-id"),
    ("self::bad\\x", "bad escape"),
])
def test_bad_endpoint_id(relay, eid, why):
    a = relay.stomp_client()
    f = a.connect(eid, expect="ERROR")
    assert why in f["message"]
    a.wait_closed()


def test_login_passcode(start_relay):
    relay = start_relay(stomp={"login": "usp", "passcode": "s3cret"})
    good = relay.stomp_client()
    good.connect(A, login="usp", passcode="s3cret")
    good.subscribe()
    for login, pw in [("usp", "wrong"), ("other", "s3cret"), (None, None), ("usp", None),
                      ("usp", "s3cret2")]:
        bad = relay.stomp_client()
        f = bad.connect(B, login=login, passcode=pw, expect="ERROR")
        assert "authentication failed" in f["message"]
        bad.wait_closed()
    relay.wait_log(r"reason=auth_failed")
    # A refused client bound nothing: B can still log in properly.
    b = relay.stomp_client()
    b.connect(B, login="usp", passcode="s3cret")
    b.subscribe()
    r = w.no_session(A, B, b"authenticated")
    b.send_record(r)
    assert good.recv_record() == r


def test_receipts(relay):
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    r = w.no_session(B, A, b"with receipt")
    a.send_record(r, receipt="send-77")
    a.expect_receipt("send-77")
    assert b.recv_record() == r
    # A SEND that is dropped (no route) still gets its receipt: receipts confirm
    # processing, not delivery.
    a.send_record(w.no_session("self::nobody", A, b"x"), receipt="send-78")
    a.expect_receipt("send-78")
    # Receipt ids are escaped like any header.
    a.send_frame("UNSUBSCRIBE", [("id", "sub-0"), ("receipt", "odd:id\\x")])
    f = a.recv_frame()
    assert f.cmd == "RECEIPT" and f["receipt-id"] == "odd:id\\x"


def test_disconnect_with_receipt(relay):
    a = relay.stomp_endpoint(A)
    a.disconnect(receipt="bye-1")
    a.expect_receipt("bye-1")
    assert a.wait_closed() == b""
    relay.wait_log(r"event=conn_close .*eid=\"self::alice\" reason=goodbye")
    # The endpoint ID is free again.
    b = relay.stomp_endpoint(A)
    c = relay.stomp_endpoint(B)
    r = w.no_session(A, B, b"again")
    c.send_record(r)
    assert b.recv_record() == r


def test_disconnect_without_receipt(relay):
    a = relay.stomp_endpoint(A)
    a.disconnect()
    assert a.wait_closed() == b""


def test_server_heartbeats(start_relay):
    relay = start_relay(stomp={"heartbeat_send_ms": 300, "heartbeat_receive_ms": 0})
    a = relay.stomp_client()
    f = a.connect(A, heart_beat="0,500")
    assert f["heart-beat"] == "300,0"
    t0 = time.monotonic()
    # Period = max(300, 500) = 500 ms: about 3 EOLs in 1.6 s, and never a frame.
    a.expect_nothing(1.6)
    elapsed = time.monotonic() - t0
    assert 2 <= a.heartbeats <= int(elapsed / 0.5) + 1, a.heartbeats
    # A client that wants none gets none.
    b = relay.stomp_client()
    b.connect(B, heart_beat="0,0")
    b.expect_nothing(0.8)
    assert b.heartbeats == 0


def test_client_heartbeat_timeout(start_relay):
    relay = start_relay(stomp={"heartbeat_send_ms": 0, "heartbeat_receive_ms": 500,
                               "heartbeat_grace_percent": 50})
    silent = relay.stomp_client()
    lively = relay.stomp_client()
    f = silent.connect(A, heart_beat="500,0")
    assert f["heart-beat"] == "0,500"
    lively.connect(B, heart_beat="500,0")
    t0 = time.monotonic()
    err, elapsed = None, None
    # The lively one sends an EOL every 200 ms and must outlive the silent one, which is
    # cut after its period + 50 % grace (the check runs every 500 ms: at about 1.0 s).
    while time.monotonic() < t0 + 2.0:
        lively.send_raw(b"\n")
        if err is None:
            try:
                err = silent.recv_frame(0.2)
                elapsed = time.monotonic() - t0
            except TimeoutError:
                pass
        else:
            lively.expect_nothing(0.2)
    assert err is not None and err.cmd == "ERROR", "silent client not cut within 2 s"
    assert "heart-beat" in err["message"]
    assert 0.7 <= elapsed <= 1.6, "cut after %.2fs, expected 0.75..1.5" % elapsed
    assert silent.wait_closed() == b""
    relay.wait_log(r"eid=\"self::alice\" reason=heartbeat_timeout")
    lively.send_raw(b"\n")
    lively.subscribe()                 # still served
    assert not lively.is_closed(0)


def test_learned_binding_by_destination(relay):
    """to_id unknown, SEND destination = another client's subscribed destination: the
    Record goes there, and the relay learns that to_id lives on that connection."""
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    ghost = "self::ghost"
    r1 = w.no_session(ghost, B, b"first")
    b.send_record(r1, dest=a.dest)
    m = a.recv_message()
    assert m.body == r1 and m["reply-to-dest"] == b.dest
    # Learned: later Records to the ghost reach A whatever their destination says.
    r2 = w.no_session(ghost, B, b"second")
    b.send_record(r2, dest="/usp/endpoint/elsewhere")
    assert a.recv_record() == r2
    # Without a matching destination and a learned route nothing is delivered.
    b.send_record(w.no_session("self::ghost2", B, b"lost"), dest="/usp/endpoint/elsewhere")
    relay.wait_log(r"reason=drop_no_route")
    a.expect_nothing(0.2)


def test_pipelined_connect_and_send(start_relay):
    """CONNECT, SUBSCRIBE and SEND in one write, more bytes in all than
    max_unidentified_input: only the bytes before CONNECT count against that bound."""
    relay = start_relay(limits={"max_unidentified_input": 2048})
    a = relay.stomp_endpoint(A)
    b = relay.stomp_client()
    r = w.no_session(A, B, b"y" * 5000)
    b.send_raw(w.stomp_frame("STOMP", [("accept-version", "1.2"), ("endpoint-id", B)]) +
               w.stomp_frame("SUBSCRIBE", [("id", "0"), ("destination", w.endpoint_dest(B)),
                                           ("receipt", "s")]) +
               w.stomp_frame("SEND", [("destination", a.dest),
                                      ("content-type", w.USP_CONTENT_TYPE)], r))
    assert b.recv_frame().cmd == "CONNECTED"
    assert b.recv_frame()["receipt-id"] == "s"
    assert a.recv_record() == r


@pytest.mark.parametrize("ctype,delivered", [
    (w.USP_CONTENT_TYPE, True),
    (w.USP_CONTENT_TYPE + ";charset=binary", True),
    (None, True),
    ("text/plain", False),
    ("application/vnd.bbf.usp.msgx", False),
])
def test_send_content_type(relay, ctype, delivered):
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    r = w.no_session(B, A, b"typed")
    a.send_record(r, content_type=ctype, receipt="t")
    a.expect_receipt("t")                  # never an error: the Record is just dropped
    if delivered:
        assert b.recv_record() == r
    else:
        relay.wait_log(r"reason=drop_bad_content_type")
        b.expect_nothing(0.2)


def test_malformed_record_dropped_silently(relay):
    """STOMP has no per-Record error: an unextractable body is dropped, the session lives."""
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    for bad in [b"\xff\xff", w.no_session(B, A, b"x")[:-2], w.no_session(B, "", b"x"),
                w.no_session(B, A, b"x") + w.f_bytes(3, A)]:
        a.send_record(bad, dest=b.dest)
    r = w.no_session(B, A, b"fine")
    a.send_record(r)
    assert b.recv_record() == r
    b.expect_nothing(0.1)
    relay.wait_log(r"reason=drop_malformed")


@pytest.mark.parametrize("frame,why", [
    (w.stomp_frame("SEND", [("content-type", w.USP_CONTENT_TYPE)], b"x"), "destination"),
    (w.stomp_frame("SUBSCRIBE", [("destination", "/usp/endpoint/self%3A%3Aalice")]),
     "id and destination"),
    (w.stomp_frame("SUBSCRIBE", [("id", "1"), ("destination", "/usp/endpoint/self%3A%3Aalice"),
                                 ("ack", "client")]), "ack:auto"),
    (w.stomp_frame("UNSUBSCRIBE", [("id", "nope")]), "unknown subscription"),
    (w.stomp_frame("STOMP", [("accept-version", "1.2"), ("endpoint-id", A)]), "already connected"),
    (w.stomp_frame("MESSAGE", [("destination", "/x")]), "not accepted"),
    (b"SEND\ndestination:/a\\tb\n\n\0", "destination"),      # bad escape
])
def test_protocol_errors_after_connect(relay, frame, why):
    a = relay.stomp_endpoint(A)
    a.send_raw(frame)
    err = a.expect_error_close()
    assert why in err["message"], err["message"]
    b = relay.stomp_endpoint(B)       # the ID was released by the close
    c = relay.stomp_endpoint(A)
    r = w.no_session(A, B, b"x")
    b.send_record(r)
    assert c.recv_record() == r


def test_malformed_heartbeat_header(relay):
    a = relay.stomp_client()
    f = a.connect(A, heart_beat="10;20", expect="ERROR")
    assert "heart-beat" in f["message"]
    a.wait_closed()


@pytest.mark.parametrize("policy", ["replace-old", "refuse-new"])
def test_learned_id_yields_to_the_real_endpoint(start_relay, policy):
    """A to_id learned from a SEND destination is an alias, not an identity: when the
    endpoint itself connects it must get its ID (even under refuse-new) without the
    connection that learned the alias being closed as "replaced"."""
    relay = start_relay(relay={"duplicate_id_policy": policy})
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    ghost = "self::ghost"
    r1 = w.no_session(ghost, B, b"learned")
    b.send_record(r1, dest=a.dest)
    assert a.recv_record() == r1
    g = relay.stomp_client()
    f = g.connect(ghost, expect=None)
    assert f.cmd == "CONNECTED", "real endpoint refused: %r" % (f.headers,)
    g.subscribe()
    assert not a.is_closed(0.3), "learning connection was closed: %r" % bytes(a.buf[:200])
    r2 = w.no_session(ghost, B, b"for the real one")
    b.send_record(r2)
    assert g.recv_record() == r2
    a.expect_nothing(0.1)


def test_own_destination_never_learned(relay):
    """A SEND naming the sender's own destination for an unknown to_id is not looped
    back to the sender, and the sender does not learn that ID."""
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    ghost = "self::ghost"
    b.send_record(w.no_session(ghost, B, b"loop"), dest=b.dest)
    relay.wait_log(r"reason=drop_no_route")
    b.expect_nothing(0.2)
    # Nothing was learned: the next Record for the ghost, naming A's destination, goes to A.
    r = w.no_session(ghost, B, b"to a")
    b.send_record(r, dest=a.dest)
    assert a.recv_record() == r
    b.expect_nothing(0.1)


def test_large_head_within_max_frame_head(start_relay):
    """A frame whose head is within max_frame_head is taken in whatever the Record size
    limit (the input bound must leave room for the head too)."""
    relay = start_relay(stomp={"max_frame_head": 1048576}, limits={"max_record_size": 65536})
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    r = w.no_session(A, B, b"x" * 60000)
    b.send_record(r, extra=[("x-pad", "a" * 400000)])
    assert a.recv_record(timeout=5) == r
