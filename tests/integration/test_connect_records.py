"""Connect Records crossing MTPs (spec notes §1.5, §9 item 7): passed byte-for-byte by
default; with connect_records = "translate" a plaintext unsigned one is re-issued as the
destination MTP's type; signed or encrypted ones always pass unchanged."""

import pytest

import uspwire as w

CTRL = "self::ctrl"
AGENT = "self::agent-1"


def test_pass_is_byte_identical(relay):
    ctrl = relay.stomp_endpoint(CTRL)
    agent = relay.uds_endpoint(AGENT)
    r = w.uds_connect(CTRL, AGENT, version="1.4")
    agent.send_record(r)
    assert ctrl.recv_record() == r
    # and the other way round
    sagent = relay.stomp_endpoint("self::sagent")
    uctrl = relay.uds_endpoint("self::uctrl")
    r = w.stomp_connect("self::uctrl", "self::sagent", sagent.dest)
    sagent.send_record(r)
    assert uctrl.recv_record() == r


def test_translate_uds_to_stomp(start_relay):
    relay = start_relay(relay={"connect_records": "translate"})
    ctrl = relay.stomp_endpoint(CTRL)
    agent = relay.uds_endpoint(AGENT)
    agent.send_record(w.uds_connect(CTRL, AGENT, version="1.4"))
    m = ctrl.recv_message()
    d = w.decode_record(m.body)
    assert d.type == "stomp_connect"
    assert (d.version, d.to_id, d.from_id) == ("1.4", CTRL, AGENT)
    assert d.connect_version == 0                      # V1_2
    assert d.subscribed_destination == "/usp/endpoint/self%3A%3Aagent-1"
    assert d.payload_security == 0 and d.mac_signature == b""
    assert m["reply-to-dest"] == d.subscribed_destination
    # Everything but Connect Records still passes untouched.
    r = w.no_session(CTRL, AGENT, b"normal")
    agent.send_record(r)
    assert ctrl.recv_record() == r


def test_translate_stomp_to_uds(start_relay):
    relay = start_relay(relay={"connect_records": "translate"})
    sagent = relay.stomp_endpoint("self::sagent")
    uctrl = relay.uds_endpoint("self::uctrl")
    sagent.send_record(w.stomp_connect("self::uctrl", "self::sagent", sagent.dest))
    d = w.decode_record(uctrl.recv_record())
    assert d.type == "uds_connect"
    assert (d.version, d.to_id, d.from_id) == ("1.3", "self::uctrl", "self::sagent")


def test_translate_same_mtp_unchanged(start_relay):
    relay = start_relay(relay={"connect_records": "translate"})
    a = relay.stomp_endpoint("self::sa")
    b = relay.stomp_endpoint("self::sb")
    r = w.stomp_connect("self::sb", "self::sa", a.dest)
    a.send_record(r)
    assert b.recv_record() == r


@pytest.mark.parametrize("kw", [
    {"mac_signature": b"\x01\x02signature\x00"},
    {"sender_cert": b"-----BEGIN CERTIFICATE-----\n..."},
    {"payload_security": w.TLS12},
], ids=["mac_signature", "sender_cert", "tls12"])
def test_translate_leaves_protected_records(start_relay, kw):
    relay = start_relay(relay={"connect_records": "translate"})
    ctrl = relay.stomp_endpoint(CTRL)
    agent = relay.uds_endpoint(AGENT)
    r = w.uds_connect(CTRL, AGENT, **kw)
    agent.send_record(r)
    assert ctrl.recv_record() == r
