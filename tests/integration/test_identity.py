"""Identity rules (spec notes §9 items 3-4, architecture §4): a Record whose from_id is
not the sending connection's endpoint is dropped and logged; a second connection with a
connected endpoint ID replaces the old one or is refused, per duplicate_id_policy."""

import pytest

import uspwire as w

A = "self::alice"
B = "self::bob"
MALLORY = "self::mallory"


def test_spoofed_from_id_dropped_stomp(relay):
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    a.send_record(w.no_session(B, MALLORY, b"spoofed"))
    legit = w.no_session(B, A, b"legit")
    a.send_record(legit)
    # The spoofed one was sent first: had it been forwarded it would arrive first.
    assert b.recv_record() == legit
    b.expect_nothing(0.3)
    relay.wait_log(r'event=record_dropped conn=\d+ mtp=stomp .*eid="self::alice" '
                   r'reason=drop_spoofed to_id="self::bob" from_id="self::mallory"')


def test_spoofed_from_id_dropped_uds(relay):
    b = relay.stomp_endpoint(B)
    u = relay.uds_endpoint(A)
    u.send_record(w.no_session(B, MALLORY, b"spoofed"))
    legit = w.no_session(B, A, b"legit")
    u.send_record(legit)
    assert b.recv_record() == legit
    b.expect_nothing(0.3)
    relay.wait_log(r'event=record_dropped conn=\d+ mtp=uds .*reason=drop_spoofed')
    # Dropping a spoofed Record is silent on UDS: the link stays up.
    assert not u.is_closed(0.1)


def test_from_id_policy_log_forwards(start_relay):
    relay = start_relay(relay={"from_id_policy": "log"})
    a = relay.stomp_endpoint(A)
    b = relay.stomp_endpoint(B)
    r = w.no_session(B, MALLORY, b"tolerated")
    a.send_record(r)
    assert b.recv_record() == r


def test_self_addressed_record_dropped(relay):
    a = relay.stomp_endpoint(A)
    a.send_record(w.no_session(A, A, b"to myself"))
    relay.wait_log(r"reason=drop_self_addressed")
    a.expect_nothing(0.2)


# ----------------------------------------------------------------- duplicate IDs: STOMP

def test_duplicate_stomp_replace_old(relay):
    old = relay.stomp_endpoint(A)
    new = relay.stomp_endpoint(A)
    err = old.expect_error_close()
    assert "taken over" in err["message"]
    relay.wait_log(r"event=endpoint_replaced .*eid=\"self::alice\"")
    b = relay.stomp_endpoint(B)
    r = w.no_session(A, B, b"for the new one")
    b.send_record(r)
    assert new.recv_record() == r
    # The old connection's close must not have unbound the new one's ID.
    r2 = w.no_session(A, B, b"still the new one")
    b.send_record(r2)
    assert new.recv_record() == r2


def test_duplicate_stomp_refuse_new(start_relay):
    relay = start_relay(relay={"duplicate_id_policy": "refuse-new"})
    old = relay.stomp_endpoint(A)
    new = relay.stomp_client()
    f = new.connect(A, expect="ERROR")
    assert "already connected" in f["message"]
    new.wait_closed()
    relay.wait_log(r"event=endpoint_refused .*eid=\"self::alice\"")
    b = relay.stomp_endpoint(B)
    r = w.no_session(A, B, b"for the old one")
    b.send_record(r)
    assert old.recv_record() == r
    # The refused connection's close did not unbind the old one.
    r2 = w.no_session(A, B, b"still the old one")
    b.send_record(r2)
    assert old.recv_record() == r2


# ----------------------------------------------------------------- duplicate IDs: UDS

def test_duplicate_uds_replace_old(relay):
    old = relay.uds_endpoint(A)
    new = relay.uds_endpoint(A)
    text = old.expect_error_close()
    assert "taken over" in text
    b = relay.stomp_endpoint(B)
    r = w.no_session(A, B, b"for the new one")
    b.send_record(r)
    assert new.recv_record() == r
    r2 = w.no_session(A, B, b"again")
    b.send_record(r2)
    assert new.recv_record() == r2


def test_duplicate_uds_refuse_new(start_relay):
    relay = start_relay(relay={"duplicate_id_policy": "refuse-new"})
    old = relay.uds_endpoint(A)
    new = relay.uds_client()
    new.send_handshake(A)
    assert "already connected" in new.expect_error_close()
    b = relay.stomp_endpoint(B)
    r = w.no_session(A, B, b"for the old one")
    b.send_record(r)
    assert old.recv_record() == r
    r2 = w.no_session(A, B, b"again")
    b.send_record(r2)
    assert old.recv_record() == r2


@pytest.mark.parametrize("first", ["stomp", "uds"])
def test_duplicate_across_mtps_replace_old(relay, first):
    """One endpoint ID, one live route, whatever the MTP."""
    if first == "stomp":
        old = relay.stomp_endpoint(A)
        new = relay.uds_endpoint(A)
    else:
        old = relay.uds_endpoint(A)
        new = relay.stomp_endpoint(A)
    old.expect_error_close()
    b = relay.stomp_endpoint(B)
    r = w.no_session(A, B, b"x")
    b.send_record(r)
    assert new.recv_record() == r
