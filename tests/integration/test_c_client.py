"""usp-testclient (tests/tools/usp-testclient.c) against a real relay: byte-exact exchange
STOMP <-> UDS both ways (empty, 1-byte, 5 MiB and TLS12 opaque payloads), 50 clients in a
ring with per-sender order checks across a 2-worker relay, an echo pair, and the client's
own exit codes (timeout, relay ERROR / Error TLV, check-order failures, usage).

The client prints "ready ..." once its MTP handshake is done; with --wait-stdin it sends
only after a line on stdin, which lets a test connect every receiver before any sender
starts (the relay drops Records for endpoints that are not connected).
"""

import os
import re
import time

import pytest

import uspwire as w

BIG = 5 * 1024 * 1024
def stomp_addr(relay):
    return "127.0.0.1:%d" % relay.stomp_port



# ----------------------------------------------------------------- exchange

CTRL = "self::ctrl"
AGENT = "os::012345-agent"


def _payloads():
    return [("empty", b""), ("one-byte", b"\x00"), ("5MiB", os.urandom(BIG))]


@pytest.mark.parametrize("name,payload", _payloads(), ids=[n for n, _ in _payloads()])
def test_exchange_record_file_byte_exact(start_relay, client, tmp_path, name, payload):
    """Records written by the test go STOMP -> UDS and UDS -> STOMP at the same time and
    arrive byte-identical (the relay never re-encodes)."""
    relay = start_relay(limits={"max_record_size": 6 * 1024 * 1024})
    down = w.no_session(AGENT, CTRL, payload)
    up = w.no_session(CTRL, AGENT, payload[::-1])
    (tmp_path / "down.rec").write_bytes(down)
    (tmp_path / "up.rec").write_bytes(up)
    (tmp_path / "agent").mkdir()
    (tmp_path / "ctrl").mkdir()

    agent = client("uds", relay.uds_path, "--eid", AGENT, "--record-file", tmp_path / "up.rec",
                   "--expect", 1, "--out-dir", tmp_path / "agent", "--timeout", 30,
                   wait_stdin=True)
    ctrl = client("stomp", stomp_addr(relay), "--eid", CTRL, "--to", AGENT,
                  "--record-file", tmp_path / "down.rec", "--expect", 1,
                  "--out-dir", tmp_path / "ctrl", "--timeout", 30, wait_stdin=True)
    agent.wait_ready()
    ctrl.wait_ready()
    assert agent.lines[0] == "ready peer=self::usprelay"
    assert ctrl.lines[0] == "ready subscribe-dest=/usp/endpoint/self%3A%3Actrl"
    agent.go()
    ctrl.go()
    agent.expect_ok(1, 1)
    ctrl.expect_ok(1, 1)

    assert (tmp_path / "agent" / "1.rec").read_bytes() == down
    assert (tmp_path / "ctrl" / "1.rec").read_bytes() == up
    assert sorted(os.listdir(tmp_path / "agent")) == ["1.rec"]
    seq = "-" if len(payload) < 8 else str(int.from_bytes(payload[:8], "big"))
    assert agent.recvs() == [("1", CTRL, AGENT, "no_session_context", str(len(down)), seq)]
    seq = "-" if len(payload) < 8 else str(int.from_bytes(payload[::-1][:8], "big"))
    assert ctrl.recvs() == [("1", AGENT, CTRL, "no_session_context", str(len(up)), seq)]


@pytest.mark.parametrize("name,payload", _payloads(), ids=[n for n, _ in _payloads()])
def test_exchange_client_built_records(start_relay, client, tmp_path, name, payload):
    """--payload-file: the client builds the Record itself; what arrives decodes to the
    right header and exactly the payload bytes, in both directions."""
    relay = start_relay(limits={"max_record_size": 6 * 1024 * 1024})
    (tmp_path / "p.bin").write_bytes(payload)
    for d in ("agent", "ctrl"):
        (tmp_path / d).mkdir()
    agent = client("uds", relay.uds_path, "--eid", AGENT, "--to", CTRL,
                   "--payload-file", tmp_path / "p.bin", "--expect", 1,
                   "--out-dir", tmp_path / "agent", "--timeout", 30, wait_stdin=True)
    ctrl = client("stomp", stomp_addr(relay), "--eid", CTRL, "--to", AGENT,
                  "--payload-file", tmp_path / "p.bin", "--expect", 1,
                  "--out-dir", tmp_path / "ctrl", "--timeout", 30, wait_stdin=True)
    agent.wait_ready()
    ctrl.wait_ready()
    agent.go()
    ctrl.go()
    agent.expect_ok(1, 1)
    ctrl.expect_ok(1, 1)
    for d, to, frm in (("agent", AGENT, CTRL), ("ctrl", CTRL, AGENT)):
        raw = (tmp_path / d / "1.rec").read_bytes()
        rec = w.decode_record(raw)
        assert (rec.to_id, rec.from_id, rec.type) == (to, frm, "no_session_context")
        assert rec.payload == payload
        assert rec.payload_security == w.PLAINTEXT
        # protobuf-c output equals the test's own encoding of the same fields
        assert raw == w.no_session(to, frm, payload)


def test_exchange_tls12_opaque(start_relay, client, tmp_path):
    """A TLS12 session_context Record with opaque bytes crosses both ways unchanged: once
    written by the test (--record-file), once built by the client (--tls12)."""
    relay = start_relay()
    opaque = os.urandom(3000)
    down = w.session_context(AGENT, CTRL, [opaque], session_id=9, sequence_id=4, expected_id=2,
                             payload_sar_state=w.SAR_BEGIN, payloadrec_sar_state=w.SAR_INPROCESS,
                             payload_security=w.TLS12)
    (tmp_path / "down.rec").write_bytes(down)
    (tmp_path / "opaque.bin").write_bytes(opaque)
    for d in ("agent", "ctrl"):
        (tmp_path / d).mkdir()
    agent = client("uds", relay.uds_path, "--eid", AGENT, "--to", CTRL, "--tls12",
                   "--payload-file", tmp_path / "opaque.bin", "--expect", 1,
                   "--out-dir", tmp_path / "agent", wait_stdin=True)
    ctrl = client("stomp", stomp_addr(relay), "--eid", CTRL, "--record-file",
                  tmp_path / "down.rec", "--expect", 1, "--out-dir", tmp_path / "ctrl",
                  wait_stdin=True)
    agent.wait_ready()
    ctrl.wait_ready()
    agent.go()
    ctrl.go()
    agent.expect_ok(1, 1)
    ctrl.expect_ok(1, 1)

    assert (tmp_path / "agent" / "1.rec").read_bytes() == down
    assert agent.recvs()[0][3] == "session_context"
    up = w.decode_record((tmp_path / "ctrl" / "1.rec").read_bytes())
    assert up.type == "session_context" and up.payload_security == w.TLS12
    assert up.payloads == (opaque,)
    assert (up.to_id, up.from_id, up.session_id, up.sequence_id) == (CTRL, AGENT, 1, 1)


def test_generated_sequence_payloads(start_relay, client, tmp_path):
    """--send N --size S: payload i is the 8-byte big-endian i then bytes (i + k) & 0xff."""
    relay = start_relay()
    (tmp_path / "out").mkdir()
    rx = client("uds", relay.uds_path, "--eid", AGENT, "--expect", 3, "--check-order",
                "--out-dir", tmp_path / "out")
    rx.wait_ready()
    tx = client("stomp", stomp_addr(relay), "--eid", CTRL, "--to", AGENT, "--send", 3,
                "--size", 40)
    tx.expect_ok(3, 0)
    rx.expect_ok(0, 3)
    for i in (1, 2, 3):
        rec = w.decode_record((tmp_path / "out" / ("%d.rec" % i)).read_bytes())
        want = i.to_bytes(8, "big") + bytes((i + k) & 0xFF for k in range(8, 40))
        assert rec.payload == want
    assert [r[5] for r in rx.recvs()] == ["1", "2", "3"]


# ----------------------------------------------------------------- many clients

def test_fifty_clients_ring_check_order(start_relay, client):
    """50 clients (25 STOMP, 25 UDS) in a ring on a 2-worker relay: each sends 200
    sequence-numbered Records to the next and checks it gets its predecessor's 200 in
    order, while sending."""
    relay = start_relay(relay={"workers": 2})
    n, count = 50, 200
    eids = ["self::ring-%02d" % i for i in range(n)]
    clients = []
    for i, eid in enumerate(eids):
        to = eids[(i + 1) % n]
        common = ["--eid", eid, "--to", to, "--send", count, "--size", 64, "--expect", count,
                  "--check-order", "--quiet", "--timeout", 60]
        if i % 2:
            clients.append(client("uds", relay.uds_path, *common, wait_stdin=True))
        else:
            clients.append(client("stomp", stomp_addr(relay), *common, wait_stdin=True))
    for c in clients:
        c.wait_ready()
    for c in clients:
        c.go()
    for c in clients:
        c.expect_ok(count, count, timeout=90)
    assert relay.count_log(r"event=record_dropped") == 0


# ----------------------------------------------------------------- echo

@pytest.mark.parametrize("echo_mtp", ["uds", "stomp"])
def test_echo_pair(start_relay, client, echo_mtp):
    relay = start_relay()
    addr = {"uds": relay.uds_path, "stomp": stomp_addr(relay)}
    other = "stomp" if echo_mtp == "uds" else "uds"
    echo = client(echo_mtp, addr[echo_mtp], "--eid", AGENT, "--echo", "--quiet",
                  "--timeout", 60)
    echo.wait_ready()
    tx = client(other, addr[other], "--eid", CTRL, "--to", AGENT, "--send", 100,
                "--size", 100, "--expect", 100, "--check-order", "--timeout", 30)
    tx.expect_ok(100, 100)
    recs = tx.recvs()
    assert [r[5] for r in recs] == [str(i) for i in range(1, 101)]
    assert all(r[1:4] == (AGENT, CTRL, "no_session_context") for r in recs)
    # Without --expect an echo client runs until its deadline or a signal: both end it
    # cleanly, with its summary.
    echo.proc.terminate()
    echo.expect_ok(100, 100, timeout=10)


# ----------------------------------------------------------------- exit codes

def test_expect_timeout_exits_1(relay, client):
    c = client("uds", relay.uds_path, "--eid", AGENT, "--expect", 2, "--timeout", 0.5)
    assert c.finish(10) == 1, c.describe()
    assert "timeout: received 0 of 2 records" in c.stderr()
    assert c.summary() == (0, 0)


def test_check_order_failure_exits_1(relay, client, tmp_path):
    """A Record whose sequence number is not the expected one fails --check-order, even
    though the expected count arrives."""
    (tmp_path / "r2.rec").write_bytes(w.no_session(AGENT, CTRL, (2).to_bytes(8, "big")))
    rx = client("uds", relay.uds_path, "--eid", AGENT, "--expect", 1, "--check-order")
    rx.wait_ready()
    tx = client("stomp", stomp_addr(relay), "--eid", CTRL, "--record-file", tmp_path / "r2.rec")
    tx.expect_ok(1, 0)
    assert rx.finish(10) == 1, rx.describe()
    assert "order out of order: from=self::ctrl seq=2 expected=1" in rx.stderr()
    assert rx.summary() == (0, 1)


def test_corrupt_padding_fails_check_order(relay, client, tmp_path):
    payload = bytearray((1).to_bytes(8, "big") + bytes((1 + k) & 0xFF for k in range(8, 32)))
    payload[20] ^= 0xFF
    (tmp_path / "r.rec").write_bytes(w.no_session(AGENT, CTRL, bytes(payload)))
    rx = client("uds", relay.uds_path, "--eid", AGENT, "--expect", 1, "--check-order")
    rx.wait_ready()
    tx = client("stomp", stomp_addr(relay), "--eid", CTRL, "--record-file", tmp_path / "r.rec")
    tx.expect_ok(1, 0)
    assert rx.finish(10) == 1, rx.describe()
    assert "order corrupt padding: from=self::ctrl seq=1" in rx.stderr()


def test_stomp_error_frame_exits_2(start_relay, client):
    relay = start_relay(stomp={"login": "usp", "passcode": "secret"})
    bad = client("stomp", stomp_addr(relay), "--eid", CTRL, "--login", "usp",
                 "--passcode", "wrong", "--expect", 1)
    assert bad.finish(10) == 2, bad.describe()
    assert "error authentication failed" in bad.stderr()
    assert bad.summary() == (0, 0)
    good = client("stomp", stomp_addr(relay), "--eid", CTRL, "--login", "usp",
                  "--passcode", "secret")
    good.expect_ok(0, 0)


def test_uds_error_tlv_exits_2(relay, client, tmp_path):
    """A hostile Record (--record-file, no to_id) makes the relay answer with an Error TLV
    and close: the client reports it and exits 2."""
    (tmp_path / "bad.rec").write_bytes(w.encode_record("", AGENT, 7, b""))
    c = client("uds", relay.uds_path, "--eid", AGENT, "--record-file", tmp_path / "bad.rec",
               "--expect", 1)
    assert c.finish(10) == 2, c.describe()
    assert re.search(r"^error cannot extract USP Record: \w+", c.stderr(), re.M), c.describe()


def test_connection_refused_and_usage(client, tmp_path):
    c = client("uds", tmp_path / "nothing.sock", "--eid", AGENT)
    assert c.finish(10) == 2
    assert "error cannot connect" in c.stderr()
    for args in (["uds", "/x"],                                     # no --eid
                 ["tcp", "/x", "--eid", AGENT],                     # unknown MTP
                 ["uds", "/x", "--eid", AGENT, "--send", 1],        # no --to
                 ["uds", "/x", "--eid", AGENT, "--to", CTRL, "--send", 1, "--size", 7],
                 ["stomp", "nohostport", "--eid", AGENT],
                 ["uds", "/x", "--eid", AGENT, "--bogus"]):
        u = client(*args)
        assert u.finish(10) == 64, u.describe()
        assert u.lines == []


def test_stomp_sender_waits_for_relay_before_exit(relay, client):
    """A STOMP sender's DISCONNECT receipt proves the relay took every SEND: a receiver
    started first gets all of a burst sent by a client that exits at once."""
    rx = client("uds", relay.uds_path, "--eid", AGENT, "--expect", 2000, "--quiet",
                "--check-order", "--stats")
    rx.wait_ready()
    t0 = time.monotonic()
    tx = client("stomp", stomp_addr(relay), "--eid", CTRL, "--to", AGENT, "--send", 2000,
                "--stats")
    tx.expect_ok(2000, 0)
    rx.expect_ok(0, 2000)
    assert time.monotonic() - t0 < 10
    # --stats: one line before the summary, rates consistent with the counts
    for c, key in ((tx, "send"), (rx, "recv")):
        line = [l for l in c.lines if l.startswith("stats ")]
        assert len(line) == 1 and c.lines[-2] == line[0], c.describe()
        f = dict(kv.split("=") for kv in line[0].split()[1:])
        secs, per_s = float(f[key + "_seconds"]), float(f[key + "_per_s"])
        assert 0 < secs < 10 and per_s > 0
        assert abs(per_s * secs - 2000) < 2, line
