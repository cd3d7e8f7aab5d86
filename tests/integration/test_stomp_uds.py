"""STOMP (Debian's stomp.py, StompConnection12) <-> UDS (raw client) through the relay:
Records both ways arrive byte-identical, for empty, 1-byte and 5 MiB payloads and for a
TLS12 session-context Record with opaque payload bytes (spec notes §0.1, §9.2)."""

import os
import queue

import pytest
import stomp

import uspwire as w

CTRL = "self::ctrl"
AGENT = "self::agent"
BIG = 5 * 1024 * 1024


class Collector(stomp.ConnectionListener):
    """Puts every frame stomp.py hands us on a queue, tagged with its command."""

    def __init__(self):
        self.q = queue.Queue()

    def on_connected(self, frame):
        self.q.put(("CONNECTED", frame))

    def on_message(self, frame):
        self.q.put(("MESSAGE", frame))

    def on_receipt(self, frame):
        self.q.put(("RECEIPT", frame))

    def on_error(self, frame):
        self.q.put(("ERROR", frame))

    def on_disconnected(self):
        self.q.put(("DISCONNECTED", None))

    def get(self, cmd, timeout=10.0):
        kind, frame = self.q.get(timeout=timeout)
        assert kind == cmd, "expected %s from stomp.py, got %s %r" % (
            cmd, kind, frame and (frame.headers, frame.body[:200]))
        return frame


class StompPy:
    """A stomp.py connection as CTRL, subscribed to the subscribe-dest from CONNECTED."""

    def __init__(self, relay):
        self.conn = stomp.StompConnection12([("127.0.0.1", relay.stomp_port)],
                                            auto_decode=False, heartbeats=(0, 0))
        # stomp.py reads 1 KiB at a time and re-joins its buffer at every NUL it sees,
        # which is quadratic on a 5 MiB binary body; a bigger read size keeps it fast.
        self.conn.transport._Transport__recv_bytes = 1 << 20
        self.col = Collector()
        self.conn.set_listener("collector", self.col)
        relay.track(self)
        self.conn.connect(wait=True, headers={"endpoint-id": CTRL})
        connected = self.col.get("CONNECTED")
        self.dest = connected.headers["subscribe-dest"]
        assert self.dest == "/usp/endpoint/self%3A%3Actrl"
        assert connected.headers["version"] == "1.2"
        self.conn.subscribe(destination=self.dest, id="1", ack="auto",
                            headers={"receipt": "sub-1"})
        assert self.col.get("RECEIPT").headers["receipt-id"] == "sub-1"

    def close(self):
        if self.conn.is_connected():
            self.conn.disconnect()


def _records():
    rnd = os.urandom(4096)
    return [
        ("empty", lambda to, frm: w.no_session(to, frm, b"")),
        ("one-byte", lambda to, frm: w.no_session(to, frm, b"\x00")),
        ("5MiB", lambda to, frm: w.no_session(to, frm, os.urandom(BIG))),
        ("tls12-session", lambda to, frm: w.session_context(
            to, frm, [rnd], session_id=7, sequence_id=3, expected_id=2,
            payload_sar_state=w.SAR_BEGIN, payloadrec_sar_state=w.SAR_INPROCESS,
            payload_security=w.TLS12)),
    ]


@pytest.mark.parametrize("name,make", _records(), ids=[n for n, _ in _records()])
def test_stomp_py_uds_byte_identical(start_relay, name, make):
    relay = start_relay(limits={"max_record_size": 6 * 1024 * 1024})
    conn = StompPy(relay)
    agent = relay.uds_endpoint(AGENT, expect_peer="self::usprelay")

    # UDS agent -> STOMP controller
    up = make(CTRL, AGENT)
    agent.send_record(up)
    msg = conn.col.get("MESSAGE", timeout=30)
    assert isinstance(msg.body, bytes)
    assert len(msg.body) == len(up)
    assert msg.body == up
    assert msg.headers["content-type"] == w.USP_CONTENT_TYPE
    assert msg.headers["content-length"] == str(len(up))
    assert msg.headers["destination"] == conn.dest
    assert msg.headers["subscription"] == "1"
    # A UDS sender has no STOMP destination: the relay names its alias for the agent.
    assert msg.headers["reply-to-dest"] == "/usp/endpoint/self%3A%3Aagent"
    got = w.decode_record(msg.body)
    assert (got.to_id, got.from_id) == (CTRL, AGENT)

    # STOMP controller -> UDS agent, sent by stomp.py with a bytes body
    down = make(AGENT, CTRL)
    conn.conn.send(destination=w.endpoint_dest(AGENT), body=down, content_type=w.USP_CONTENT_TYPE,
              headers={"reply-to-dest": conn.dest, "receipt": "send-1"})
    assert conn.col.get("RECEIPT", timeout=30).headers["receipt-id"] == "send-1"
    rec = agent.recv_record(timeout=30)
    assert len(rec) == len(down)
    assert rec == down
    if name == "tls12-session":
        d = w.decode_record(rec)
        assert d.type == "session_context" and d.payload_security == w.TLS12
        assert d.payloads and d.session_id == 7 and d.sequence_id == 3
    agent.expect_nothing(0.1)
    assert conn.col.q.empty()
