"""uspwire.py — wire helpers for the usprelayd integration tests.

Everything a test needs to talk to a real relay, in pure Python and blocking sockets:

* USP Record encoding (a tiny protobuf writer for usp-record.proto) and a small decoder
  to read the header and Connect Record fields back (``encode_record`` and the
  ``no_session`` / ``session_context`` / ``uds_connect`` / ``stomp_connect`` /
  ``mqtt_connect`` / ``websocket_connect`` / ``disconnect`` shorthands; ``decode_record``).
* ``StompClient``: a raw STOMP 1.2 client (CONNECT/STOMP, SUBSCRIBE, SEND, content-length
  aware frame reader that skips heart-beat EOLs and counts them).
* ``UdsClient``: a raw USP UDS client (``_USP`` frames, TLVs, handshake, Records).
* ``MqttClient``: a raw MQTT 3.1.1 / 5.0 client (CONNECT with any flags, will and v5
  properties incl. user properties; SUBSCRIBE/UNSUBSCRIBE; PUBLISH QoS 0/1/2 with the
  acks; PINGREQ; a decoder for every server packet), and the packet builders under it
  (``mqtt_*_packet``, ``mqtt_props``) for bytes no library would send.

Wire facts: /work/shared/spec/usp-mtp-notes.md §1 (Record), §4 (STOMP), §5 (MQTT),
§6 (UDS).
Nothing here sleeps blindly: reads block with a timeout and raise ``TimeoutError``; a
peer close raises ``Closed``.
"""

import dataclasses
import socket
import struct
import time

USP_CONTENT_TYPE = "application/vnd.bbf.usp.msg"

# Record.record_type oneof members (field numbers) and their names.
RECORD_TYPES = {
    7: "no_session_context",
    8: "session_context",
    9: "websocket_connect",
    10: "mqtt_connect",
    11: "stomp_connect",
    12: "disconnect",
    13: "uds_connect",
}
PLAINTEXT, TLS12 = 0, 1
SAR_NONE, SAR_BEGIN, SAR_INPROCESS, SAR_COMPLETE = 0, 1, 2, 3

# UDS TLV types (R-UDS.12-14).
TLV_HANDSHAKE, TLV_ERROR, TLV_RECORD = 1, 2, 3
UDS_SYNC = b"_USP"


class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


# ----------------------------------------------------------------- protobuf writer

def varint(n):
    if n < 0:
        raise ValueError("negative varint")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _tag(num, wire):
    return varint((num << 3) | wire)


def f_varint(num, value):
    """Varint field; proto3 omits the default 0."""
    return _tag(num, 0) + varint(value) if value else b""


def f_bytes(num, value, always=False):
    """Length-delimited field; proto3 omits empty strings/bytes unless ALWAYS."""
    if isinstance(value, str):
        value = value.encode()
    if not value and not always:
        return b""
    return _tag(num, 2) + varint(len(value)) + value


def f_fixed32(num, value):
    return _tag(num, 5) + struct.pack("<I", value) if value else b""


def encode_record(to_id, from_id, type_field, body=b"", *, version="1.3", payload_security=0,
                  mac_signature=b"", sender_cert=b""):
    """A Record: header fields then the record_type member TYPE_FIELD (7..13) holding BODY
    (an encoded sub-message; written even when empty so the oneof is set)."""
    return (f_bytes(1, version) + f_bytes(2, to_id) + f_bytes(3, from_id) +
            f_varint(4, payload_security) + f_bytes(5, mac_signature) + f_bytes(6, sender_cert) +
            f_bytes(type_field, body, always=True))


def no_session(to_id, from_id, payload=b"", **kw):
    """NoSessionContextRecord (payload is field 2)."""
    return encode_record(to_id, from_id, 7, f_bytes(2, payload), **kw)


def session_context(to_id, from_id, payloads=(b"",), *, session_id=1, sequence_id=1,
                    expected_id=1, retransmit_id=0, payload_sar_state=0,
                    payloadrec_sar_state=0, **kw):
    body = (f_varint(1, session_id) + f_varint(2, sequence_id) + f_varint(3, expected_id) +
            f_varint(4, retransmit_id) + f_varint(5, payload_sar_state) +
            f_varint(6, payloadrec_sar_state) +
            b"".join(f_bytes(7, p, always=True) for p in payloads))
    return encode_record(to_id, from_id, 8, body, **kw)


def websocket_connect(to_id, from_id, **kw):
    return encode_record(to_id, from_id, 9, b"", **kw)


def mqtt_connect(to_id, from_id, topic, version=1, **kw):
    return encode_record(to_id, from_id, 10, f_varint(1, version) + f_bytes(2, topic), **kw)


def stomp_connect(to_id, from_id, destination, version=0, **kw):
    return encode_record(to_id, from_id, 11, f_varint(1, version) + f_bytes(2, destination), **kw)


def disconnect(to_id, from_id, reason="", reason_code=0, **kw):
    return encode_record(to_id, from_id, 12, f_bytes(1, reason) + f_fixed32(2, reason_code), **kw)


def uds_connect(to_id, from_id, **kw):
    return encode_record(to_id, from_id, 13, b"", **kw)


# ----------------------------------------------------------------- protobuf reader

def _read_varint(buf, off):
    shift = n = 0
    while True:
        if off >= len(buf):
            raise ValueError("truncated varint")
        b = buf[off]
        off += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, off
        shift += 7
        if shift > 63:
            raise ValueError("varint overflow")


def parse_fields(buf):
    """[(field, wire_type, value)] of one message: ints for varint/fixed, bytes for LEN."""
    out, off = [], 0
    buf = bytes(buf)
    while off < len(buf):
        key, off = _read_varint(buf, off)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, off = _read_varint(buf, off)
        elif wire == 1:
            v = struct.unpack_from("<Q", buf, off)[0]
            off += 8
        elif wire == 2:
            ln, off = _read_varint(buf, off)
            if off + ln > len(buf):
                raise ValueError("field past end")
            v = buf[off:off + ln]
            off += ln
        elif wire == 5:
            v = struct.unpack_from("<I", buf, off)[0]
            off += 4
        else:
            raise ValueError("bad wire type %d" % wire)
        out.append((num, wire, v))
    return out


@dataclasses.dataclass
class Record:
    version: str = ""
    to_id: str = ""
    from_id: str = ""
    payload_security: int = 0
    mac_signature: bytes = b""
    sender_cert: bytes = b""
    type: str = ""                   # RECORD_TYPES name, "" if no member
    payload: bytes = b""             # no_session_context payload
    payloads: tuple = ()             # session_context payloads
    session_id: int = 0
    sequence_id: int = 0
    expected_id: int = 0
    retransmit_id: int = 0
    payload_sar_state: int = 0
    payloadrec_sar_state: int = 0
    connect_version: int = 0         # mqtt_connect / stomp_connect version
    subscribed_topic: str = ""       # mqtt_connect
    subscribed_destination: str = "" # stomp_connect
    reason: str = ""                 # disconnect
    reason_code: int = 0


def decode_record(buf):
    """Decode a Record (last value wins, as protobuf does). Raises ValueError if it does
    not parse."""
    r = Record()
    for num, _wire, v in parse_fields(buf):
        if num == 1:
            r.version = v.decode()
        elif num == 2:
            r.to_id = v.decode()
        elif num == 3:
            r.from_id = v.decode()
        elif num == 4:
            r.payload_security = v
        elif num == 5:
            r.mac_signature = bytes(v)
        elif num == 6:
            r.sender_cert = bytes(v)
        elif num in RECORD_TYPES:
            r.type = RECORD_TYPES[num]
            sub = parse_fields(v)
            if num == 7:
                for n, _, x in sub:
                    if n == 2:
                        r.payload = bytes(x)
            elif num == 8:
                payloads = []
                for n, _, x in sub:
                    if n == 7:
                        payloads.append(bytes(x))
                    elif n in (1, 2, 3, 4, 5, 6):
                        setattr(r, ("session_id", "sequence_id", "expected_id", "retransmit_id",
                                    "payload_sar_state", "payloadrec_sar_state")[n - 1], x)
                r.payloads = tuple(payloads)
            elif num in (10, 11):
                for n, _, x in sub:
                    if n == 1:
                        r.connect_version = x
                    elif n == 2:
                        if num == 10:
                            r.subscribed_topic = x.decode()
                        else:
                            r.subscribed_destination = x.decode()
            elif num == 12:
                for n, _, x in sub:
                    if n == 1:
                        r.reason = x.decode()
                    elif n == 2:
                        r.reason_code = x
    return r


# ----------------------------------------------------------------- misc

_UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def pct_encode(eid):
    """Percent-encoding the relay uses for destinations (every byte outside the RFC 3986
    unreserved set, upper-case hex): "self::ctrl" -> "self%3A%3Actrl"."""
    return "".join(chr(b) if b in _UNRESERVED else "%%%02X" % b for b in eid.encode())


def endpoint_dest(eid, template="/usp/endpoint/{eid}"):
    """The subscribe-dest the relay gives endpoint EID with TEMPLATE."""
    return template.replace("{eid}", pct_encode(eid))


class _Deadline:
    def __init__(self, timeout):
        self.end = time.monotonic() + timeout

    def left(self):
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left


class _SockClient:
    """Shared socket plumbing: buffered reads with a deadline."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Read more bytes into buf; raise Closed at EOF, TimeoutError at the deadline."""
        if self.eof:
            raise Closed("connection closed")
        self.sock.settimeout(deadline.left())
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError("timed out") from None
        except (ConnectionResetError, BrokenPipeError) as e:
            self.eof = True
            raise Closed(str(e)) from None
        if not chunk:
            self.eof = True
            raise Closed("connection closed")
        self.buf += chunk

    def wait_closed(self, timeout=5.0):
        """Read and discard until the peer closes; return the discarded bytes. Raises
        TimeoutError if it stays open."""
        d = _Deadline(timeout)
        while True:
            try:
                self._fill(d)
            except Closed:
                data = bytes(self.buf)
                self.buf.clear()
                return data

    def is_closed(self, timeout=0.0):
        """True if the peer has closed (waits up to TIMEOUT for the EOF, keeping data)."""
        d = _Deadline(max(timeout, 0.001))
        try:
            while True:
                self._fill(d)
        except Closed:
            return True
        except TimeoutError:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------- STOMP

STOMP_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", ":": "\\c"}
_UNESCAPES = {"\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\c": ":"}


def stomp_escape(s):
    return "".join(STOMP_ESCAPES.get(ch, ch) for ch in s)


def stomp_unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\":
            pair = s[i:i + 2]
            if pair not in _UNESCAPES:
                raise ValueError("bad STOMP escape %r" % pair)
            out.append(_UNESCAPES[pair])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def stomp_frame(cmd, headers=(), body=b"", *, escape=None, content_length=None):
    """Bytes of one STOMP frame. HEADERS: dict or sequence of (name, value) (order and
    repeats kept). ESCAPE defaults to STOMP 1.2 rules (no escaping for CONNECT/STOMP).
    CONTENT_LENGTH: None adds it when BODY is non-empty, True always, False never."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    if escape is None:
        escape = cmd not in ("CONNECT", "STOMP", "CONNECTED")
    if isinstance(body, str):
        body = body.encode()
    headers = list(headers)
    if content_length is True or (content_length is None and body):
        if not any(k == "content-length" for k, _ in headers):
            headers.append(("content-length", str(len(body))))
    lines = [cmd]
    for k, v in headers:
        k, v = str(k), str(v)
        lines.append((stomp_escape(k) + ":" + stomp_escape(v)) if escape else (k + ":" + v))
    return ("\n".join(lines) + "\n\n").encode() + body + b"\0"


@dataclasses.dataclass
class Frame:
    cmd: str
    headers: dict            # first occurrence wins, unescaped (except CONNECTED)
    header_list: list        # every (name, value) as received, unescaped likewise
    body: bytes

    def __getitem__(self, name):
        return self.headers[name]

    def get(self, name, default=None):
        return self.headers.get(name, default)


class StompClient(_SockClient):
    """Raw STOMP 1.2 client over TCP. ``heartbeats`` counts the EOLs skipped between frames."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, timeout)
        self.heartbeats = 0
        self.eid = None
        self.dest = None          # subscribe-dest from CONNECTED
        self.sub_id = None
        self.connected_frame = None
        self._receipt_seq = 0

    # -- output
    def send_frame(self, cmd, headers=(), body=b"", **kw):
        self.send_raw(stomp_frame(cmd, headers, body, **kw))

    def connect(self, eid, *, cmd="STOMP", accept_version="1.2", heart_beat=None, login=None,
                passcode=None, host="localhost", escape_eid=False, extra=(), expect="CONNECTED",
                timeout=None):
        """Send STOMP/CONNECT for EID and return the reply frame (asserting its command is
        EXPECT unless EXPECT is None). ESCAPE_EID writes ':' as '\\c' as USP asks."""
        h = []
        if accept_version is not None:
            h.append(("accept-version", accept_version))
        if host is not None:
            h.append(("host", host))
        if eid is not None:
            h.append(("endpoint-id", stomp_escape(eid) if escape_eid else eid))
        if heart_beat is not None:
            h.append(("heart-beat", heart_beat))
        if login is not None:
            h.append(("login", login))
        if passcode is not None:
            h.append(("passcode", passcode))
        h.extend(extra)
        self.send_frame(cmd, h, escape=False)
        f = self.recv_frame(timeout)
        if expect is not None:
            assert f.cmd == expect, "expected %s, got %s %r %r" % (expect, f.cmd, f.headers, f.body)
        if f.cmd == "CONNECTED":
            self.eid = eid
            self.dest = f.get("subscribe-dest")
            self.connected_frame = f
        return f

    def next_receipt(self):
        self._receipt_seq += 1
        return "r-%d" % self._receipt_seq

    def subscribe(self, dest=None, sub_id="sub-0", *, wait_receipt=True, extra=()):
        """SUBSCRIBE to DEST (default: our subscribe-dest). With WAIT_RECEIPT the call
        returns only once the relay has processed it (RECEIPT received)."""
        dest = self.dest if dest is None else dest
        h = [("id", sub_id), ("destination", dest), ("ack", "auto")] + list(extra)
        rid = None
        if wait_receipt:
            rid = self.next_receipt()
            h.append(("receipt", rid))
        self.send_frame("SUBSCRIBE", h)
        self.sub_id = sub_id
        if wait_receipt:
            self.expect_receipt(rid)

    def expect_receipt(self, rid, timeout=None):
        f = self.recv_frame(timeout)
        assert f.cmd == "RECEIPT" and f.get("receipt-id") == rid, \
            "expected RECEIPT %s, got %s %r %r" % (rid, f.cmd, f.headers, f.body)
        return f

    def send_record(self, record, dest=None, *, reply_to=None, receipt=None,
                    content_type=USP_CONTENT_TYPE, extra=()):
        """SEND a binary Record. DEST defaults to the destination the relay gives the
        Record's to_id with the default template, as a USP endpoint would address it (the
        relay routes by to_id); REPLY_TO defaults to our subscribe-dest ("" for none)."""
        if dest is None:
            try:
                dest = endpoint_dest(decode_record(record).to_id or "none")
            except (ValueError, UnicodeDecodeError):
                dest = "/usp/endpoint/none"
        h = [("destination", dest)]
        if content_type is not None:
            h.append(("content-type", content_type))
        reply = reply_to if reply_to is not None else self.dest
        if reply:
            h.append(("reply-to-dest", reply))
        if receipt:
            h.append(("receipt", receipt))
        h.extend(extra)
        self.send_frame("SEND", h, record, content_length=True)

    def disconnect(self, receipt=None):
        h = [("receipt", receipt)] if receipt else []
        self.send_frame("DISCONNECT", h)

    # -- input
    def _parse_head(self, end):
        text = bytes(self.buf[:end]).decode("utf-8")
        lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
        cmd = lines[0]
        raw = []
        for ln in lines[1:]:
            if not ln:
                continue
            k, _, v = ln.partition(":")
            if cmd != "CONNECTED":
                k, v = stomp_unescape(k), stomp_unescape(v)
            raw.append((k, v))
        headers = {}
        for k, v in raw:
            headers.setdefault(k, v)
        return cmd, headers, raw

    def recv_frame(self, timeout=None):
        """Next frame (heart-beat EOLs before it are skipped and counted). Raises Closed if
        the connection ends first, TimeoutError if nothing complete arrives in time."""
        d = _Deadline(self.timeout if timeout is None else timeout)
        while True:
            # heart-beats
            while self.buf[:1] == b"\n" or self.buf[:2] == b"\r\n":
                n = 1 if self.buf[:1] == b"\n" else 2
                del self.buf[:n]
                self.heartbeats += 1
            if self.buf[:1] == b"\r" and len(self.buf) == 1:
                self._fill(d)
                continue
            end = -1
            i = self.buf.find(b"\n\n")
            j = self.buf.find(b"\n\r\n")
            cands = [(i, 2), (j, 3)]
            cands = [(p, n) for p, n in cands if p >= 0]
            if cands:
                p, n = min(cands)
                end, body_start = p, p + n
            if end >= 0:
                cmd, headers, raw = self._parse_head(end)
                cl = headers.get("content-length")
                if cl is not None:
                    need = body_start + int(cl) + 1
                    if len(self.buf) >= need:
                        assert self.buf[need - 1] == 0, "no NUL after content-length body"
                        body = bytes(self.buf[body_start:need - 1])
                        del self.buf[:need]
                        return Frame(cmd, headers, raw, body)
                else:
                    nul = self.buf.find(b"\0", body_start)
                    if nul >= 0:
                        body = bytes(self.buf[body_start:nul])
                        del self.buf[:nul + 1]
                        return Frame(cmd, headers, raw, body)
            self._fill(d)

    def recv_message(self, timeout=None):
        f = self.recv_frame(timeout)
        assert f.cmd == "MESSAGE", "expected MESSAGE, got %s %r %r" % (f.cmd, f.headers, f.body)
        return f

    def recv_record(self, timeout=None):
        """Body of the next MESSAGE."""
        return self.recv_message(timeout).body

    def expect_error_close(self, timeout=None):
        """Next frame must be ERROR, followed by the relay closing the connection. Returns
        the ERROR frame."""
        f = self.recv_frame(timeout)
        assert f.cmd == "ERROR", "expected ERROR, got %s %r %r" % (f.cmd, f.headers, f.body)
        rest = self.wait_closed(self.timeout if timeout is None else timeout)
        assert rest.strip(b"\r\n") == b"", "bytes after ERROR: %r" % rest[:200]
        return f

    def expect_nothing(self, timeout=0.3):
        """No frame (heart-beats aside) arrives within TIMEOUT and the connection stays open."""
        try:
            f = self.recv_frame(timeout)
        except TimeoutError:
            return
        raise AssertionError("unexpected frame %s %r %r" % (f.cmd, f.headers, f.body[:100]))


# ----------------------------------------------------------------- UDS

def uds_frame(tlvs):
    """A UDS frame holding TLVS [(type, value bytes)]."""
    body = b"".join(struct.pack(">BI", t, len(v)) + (v.encode() if isinstance(v, str) else v)
                    for t, v in tlvs)
    return UDS_SYNC + struct.pack(">I", len(body)) + body


class UdsClient(_SockClient):
    """Raw USP UNIX-domain-socket client."""

    def __init__(self, path, timeout=5.0):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(str(path))
        super().__init__(sock, timeout)
        self.tlvs = []            # received TLVs not yet consumed
        self.eid = None
        self.peer_eid = None

    def send_tlvs(self, tlvs):
        self.send_raw(uds_frame(tlvs))

    def send_handshake(self, eid):
        self.send_tlvs([(TLV_HANDSHAKE, eid)])

    def handshake(self, eid, timeout=None):
        """Send our handshake and return the relay's answer (the peer endpoint ID)."""
        self.send_handshake(eid)
        t, v = self.recv_tlv(timeout)
        assert t == TLV_HANDSHAKE, "expected handshake TLV, got type %d %r" % (t, v[:200])
        self.eid = eid
        self.peer_eid = v.decode()
        return self.peer_eid

    def send_record(self, record):
        self.send_tlvs([(TLV_RECORD, record)])

    def _read_frame(self, d):
        while len(self.buf) < 8:
            self._fill(d)
        assert bytes(self.buf[:4]) == UDS_SYNC, "bad sync from relay: %r" % bytes(self.buf[:8])
        (n,) = struct.unpack(">I", self.buf[4:8])
        while len(self.buf) < 8 + n:
            self._fill(d)
        body = bytes(self.buf[8:8 + n])
        del self.buf[:8 + n]
        off = 0
        while off < n:
            t, ln = struct.unpack_from(">BI", body, off)
            off += 5
            assert off + ln <= n, "TLV overruns the relay's frame"
            self.tlvs.append((t, body[off:off + ln]))
            off += ln

    def recv_tlv(self, timeout=None):
        """Next TLV (type, value). Raises Closed / TimeoutError."""
        d = _Deadline(self.timeout if timeout is None else timeout)
        while not self.tlvs:
            self._read_frame(d)
        return self.tlvs.pop(0)

    def recv_record(self, timeout=None):
        t, v = self.recv_tlv(timeout)
        assert t == TLV_RECORD, "expected Record TLV, got type %d %r" % (t, v[:200])
        return v

    def expect_error_close(self, timeout=None):
        """Next TLV must be an Error TLV, then the relay closes. Returns the error text."""
        t, v = self.recv_tlv(timeout)
        assert t == TLV_ERROR, "expected Error TLV, got type %d %r" % (t, v[:200])
        rest = self.wait_closed(self.timeout if timeout is None else timeout)
        assert rest == b"" and not self.tlvs, "data after Error TLV: %r" % rest[:200]
        return v.decode("utf-8", "replace")

    def expect_nothing(self, timeout=0.3):
        try:
            t, v = self.recv_tlv(timeout)
        except TimeoutError:
            return
        raise AssertionError("unexpected TLV type %d %r" % (t, v[:100]))


# ----------------------------------------------------------------- MQTT

(MQTT_CONNECT, MQTT_CONNACK, MQTT_PUBLISH, MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP,
 MQTT_SUBSCRIBE, MQTT_SUBACK, MQTT_UNSUBSCRIBE, MQTT_UNSUBACK, MQTT_PINGREQ, MQTT_PINGRESP,
 MQTT_DISCONNECT, MQTT_AUTH) = range(1, 16)
MQTT_TYPE_NAMES = {v: k[5:] for k, v in list(globals().items())
                   if k.startswith("MQTT_") and isinstance(v, int) and 1 <= v <= 15}

MQTT_CONTENT_TYPE = "usp.msg"

# v5 property identifiers (MQTT 5.0 §2.2.2.2) and how each value is written.
P_PAYLOAD_FORMAT, P_MESSAGE_EXPIRY, P_CONTENT_TYPE = 0x01, 0x02, 0x03
P_RESPONSE_TOPIC, P_CORRELATION_DATA, P_SUBSCRIPTION_ID = 0x08, 0x09, 0x0B
P_SESSION_EXPIRY, P_ASSIGNED_CLIENT_ID, P_SERVER_KEEP_ALIVE = 0x11, 0x12, 0x13
P_AUTH_METHOD, P_AUTH_DATA, P_REQUEST_PROBLEM_INFO, P_WILL_DELAY = 0x15, 0x16, 0x17, 0x18
P_REQUEST_RESPONSE_INFO, P_RESPONSE_INFO, P_SERVER_REFERENCE = 0x19, 0x1A, 0x1C
P_REASON_STRING, P_RECEIVE_MAXIMUM, P_TOPIC_ALIAS_MAX, P_TOPIC_ALIAS = 0x1F, 0x21, 0x22, 0x23
P_MAX_QOS, P_RETAIN_AVAILABLE, P_USER_PROPERTY, P_MAX_PACKET_SIZE = 0x24, 0x25, 0x26, 0x27
P_WILDCARD_AVAILABLE, P_SUB_ID_AVAILABLE, P_SHARED_AVAILABLE = 0x28, 0x29, 0x2A
_PROP_KIND = {
    0x01: "byte", 0x02: "u32", 0x03: "str", 0x08: "str", 0x09: "bin", 0x0B: "vbi",
    0x11: "u32", 0x12: "str", 0x13: "u16", 0x15: "str", 0x16: "bin", 0x17: "byte",
    0x18: "u32", 0x19: "byte", 0x1A: "str", 0x1C: "str", 0x1F: "str", 0x21: "u16",
    0x22: "u16", 0x23: "u16", 0x24: "byte", 0x25: "byte", 0x26: "pair", 0x27: "u32",
    0x28: "byte", 0x29: "byte", 0x2A: "byte",
}


def mqtt_vbi(n):
    """MQTT Variable Byte Integer (minimal encoding)."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    """A two-byte-length-prefixed MQTT string or binary field."""
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">H", len(s)) + s


def mqtt_props(props):
    """v5 property list (with its length) from PROPS: a dict or a sequence of (id, value);
    a user property's value is a (key, value) pair. Ids not in the table are written as
    raw bytes (for malformed-property tests)."""
    items = props.items() if isinstance(props, dict) else props
    out = bytearray()
    for pid, v in items:
        kind = _PROP_KIND.get(pid)
        out += mqtt_vbi(pid)
        if kind == "byte":
            out.append(v)
        elif kind == "u16":
            out += struct.pack(">H", v)
        elif kind == "u32":
            out += struct.pack(">I", v)
        elif kind == "vbi":
            out += mqtt_vbi(v)
        elif kind in ("str", "bin"):
            out += mqtt_str(v)
        elif kind == "pair":
            out += mqtt_str(v[0]) + mqtt_str(v[1])
        else:
            out += v
    return mqtt_vbi(len(out)) + bytes(out)


def mqtt_packet(ptype, flags, body):
    """Fixed header (type, flags, Remaining Length) + BODY."""
    return bytes([(ptype << 4) | flags]) + mqtt_vbi(len(body)) + body


def mqtt_connect_packet(client_id="", *, level=5, clean=True, keepalive=0, username=None,
                        password=None, will=None, props=(), will_props=(), proto_name="MQTT"):
    """CONNECT. WILL: dict(topic, payload, qos=0, retain=False). PROPS / WILL_PROPS: v5
    properties (ignored for level 4)."""
    flags = 0x02 if clean else 0
    payload = mqtt_str(client_id)
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
        if level == 5:
            payload += mqtt_props(will_props)
        payload += mqtt_str(will["topic"]) + mqtt_str(will.get("payload", b""))
    if username is not None:
        flags |= 0x80
        payload += mqtt_str(username)
    if password is not None:
        flags |= 0x40
        payload += mqtt_str(password)
    var = mqtt_str(proto_name) + bytes([level, flags]) + struct.pack(">H", keepalive)
    if level == 5:
        var += mqtt_props(props)
    return mqtt_packet(MQTT_CONNECT, 0, var + payload)


def mqtt_publish_packet(topic, payload, *, level=5, qos=0, retain=False, dup=False, pid=None,
                        props=()):
    flags = (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = mqtt_str(topic)
    if qos:
        body += struct.pack(">H", pid)
    if level == 5:
        body += mqtt_props(props)
    if isinstance(payload, str):
        payload = payload.encode()
    return mqtt_packet(MQTT_PUBLISH, flags, body + payload)


def mqtt_subscribe_packet(pid, filters, *, level=5, props=()):
    """SUBSCRIBE; FILTERS: [(filter, options byte)] (options: QoS in the low bits)."""
    body = struct.pack(">H", pid) + (mqtt_props(props) if level == 5 else b"")
    for f, opts in filters:
        body += mqtt_str(f) + bytes([opts])
    return mqtt_packet(MQTT_SUBSCRIBE, 0x02, body)


def mqtt_unsubscribe_packet(pid, filters, *, level=5, props=()):
    body = struct.pack(">H", pid) + (mqtt_props(props) if level == 5 else b"")
    for f in filters:
        body += mqtt_str(f)
    return mqtt_packet(MQTT_UNSUBSCRIBE, 0x02, body)


def mqtt_ack_packet(ptype, pid, *, level=5, reason=None):
    """PUBACK/PUBREC/PUBREL/PUBCOMP (PUBREL carries the 0010 flags)."""
    body = struct.pack(">H", pid)
    if level == 5 and reason is not None:
        body += bytes([reason])
    return mqtt_packet(ptype, 0x02 if ptype == MQTT_PUBREL else 0, body)


def _read_vbi(buf, off):
    n = shift = 0
    for _ in range(4):
        if off >= len(buf):
            raise ValueError("truncated variable byte integer")
        b = buf[off]
        off += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, off
        shift += 7
    raise ValueError("variable byte integer longer than 4 bytes")


def _read_mstr(buf, off):
    if off + 2 > len(buf):
        raise ValueError("truncated string length")
    (n,) = struct.unpack_from(">H", buf, off)
    off += 2
    if off + n > len(buf):
        raise ValueError("string past the end")
    return bytes(buf[off:off + n]), off + n


def mqtt_parse_props(buf, off):
    """(props dict id -> value (str fields decoded; user properties as a list of (key,
    value) under P_USER_PROPERTY), offset after them)."""
    ln, off = _read_vbi(buf, off)
    end = off + ln
    if end > len(buf):
        raise ValueError("properties past the end")
    props = {}
    while off < end:
        pid, off = _read_vbi(buf, off)
        kind = _PROP_KIND.get(pid)
        if kind == "byte":
            v = buf[off]
            off += 1
        elif kind == "u16":
            (v,) = struct.unpack_from(">H", buf, off)
            off += 2
        elif kind == "u32":
            (v,) = struct.unpack_from(">I", buf, off)
            off += 4
        elif kind == "vbi":
            v, off = _read_vbi(buf, off)
        elif kind == "str":
            v, off = _read_mstr(buf, off)
            v = v.decode()
        elif kind == "bin":
            v, off = _read_mstr(buf, off)
        elif kind == "pair":
            k, off = _read_mstr(buf, off)
            val, off = _read_mstr(buf, off)
            props.setdefault(P_USER_PROPERTY, []).append((k.decode(), val.decode()))
            continue
        else:
            raise ValueError("unknown property id 0x%02x" % pid)
        if pid in props and pid != P_SUBSCRIPTION_ID:
            raise ValueError("property 0x%02x repeated" % pid)
        props[pid] = v
    if off != end:
        raise ValueError("property overruns its list")
    return props, end


@dataclasses.dataclass
class MqttPacket:
    type: int
    flags: int
    body: bytes
    level: int
    reason: int = 0          # CONNACK code / v5 reason of an ack or DISCONNECT
    session_present: int = 0
    pid: int = 0
    props: dict = dataclasses.field(default_factory=dict)
    topic: str = ""
    payload: bytes = b""
    qos: int = 0
    retain: int = 0
    dup: int = 0
    reasons: list = dataclasses.field(default_factory=list)   # SUBACK / UNSUBACK

    @property
    def name(self):
        return MQTT_TYPE_NAMES.get(self.type, "TYPE%d" % self.type)

    @property
    def user_props(self):
        return self.props.get(P_USER_PROPERTY, [])

    def user_prop(self, key):
        vals = [v for k, v in self.user_props if k == key]
        return vals[0] if vals else None

    def __repr__(self):
        extra = ""
        if self.type == MQTT_PUBLISH:
            extra = " topic=%r qos=%d pid=%d retain=%d len=%d" % (
                self.topic, self.qos, self.pid, self.retain, len(self.payload))
        elif self.type in (MQTT_CONNACK, MQTT_DISCONNECT, MQTT_PUBACK, MQTT_PUBREC,
                           MQTT_PUBREL, MQTT_PUBCOMP):
            extra = " reason=0x%02x pid=%d" % (self.reason, self.pid)
        elif self.type in (MQTT_SUBACK, MQTT_UNSUBACK):
            extra = " pid=%d reasons=%s" % (self.pid, ["0x%02x" % r for r in self.reasons])
        return "<%s%s props=%r>" % (self.name, extra, self.props)


def mqtt_parse(ptype, flags, body, level):
    """Decode a packet the relay sent (server-to-client types) for session LEVEL."""
    p = MqttPacket(ptype, flags, bytes(body), level)
    b = p.body
    if ptype == MQTT_CONNACK:
        p.session_present, p.reason = b[0] & 1, b[1]
        if level == 5 and len(b) > 2:
            p.props, end = mqtt_parse_props(b, 2)
            assert end == len(b), "bytes after CONNACK properties"
        else:
            assert len(b) == 2, "3.1.1 CONNACK body is 2 bytes, got %d" % len(b)
    elif ptype == MQTT_PUBLISH:
        p.qos, p.retain, p.dup = (flags >> 1) & 3, flags & 1, (flags >> 3) & 1
        t, off = _read_mstr(b, 0)
        p.topic = t.decode()
        if p.qos:
            (p.pid,) = struct.unpack_from(">H", b, off)
            off += 2
        if level == 5:
            p.props, off = mqtt_parse_props(b, off)
        p.payload = b[off:]
    elif ptype in (MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP):
        (p.pid,) = struct.unpack_from(">H", b, 0)
        if level == 5 and len(b) > 2:
            p.reason = b[2]
            if len(b) > 3:
                p.props, _ = mqtt_parse_props(b, 3)
        else:
            assert len(b) == 2 or level == 5, "3.1.1 ack body is 2 bytes"
    elif ptype in (MQTT_SUBACK, MQTT_UNSUBACK):
        (p.pid,) = struct.unpack_from(">H", b, 0)
        off = 2
        if level == 5:
            p.props, off = mqtt_parse_props(b, off)
        p.reasons = list(b[off:])
    elif ptype in (MQTT_DISCONNECT, MQTT_AUTH):
        if b:
            p.reason = b[0]
            if len(b) > 1:
                p.props, _ = mqtt_parse_props(b, 1)
    elif ptype == MQTT_PINGRESP:
        assert not b, "PINGRESP with a body"
    return p


def mqtt_topic(eid, template="usp/endpoint/{eid}"):
    """The topic the relay gives endpoint EID with TEMPLATE (the EID is put in as is)."""
    return template.replace("{eid}", eid)


def reply_to_suffix(reply_topic):
    """3.1.1 reply-to suffix (R-MQTT.24): "/reply-to=" + the topic with '/' as %2F."""
    return "/reply-to=" + reply_topic.replace("/", "%2F")


class MqttClient(_SockClient):
    """Raw MQTT 3.1.1 (level 4) / 5.0 (level 5) client over TCP: builds any packet,
    reads and decodes what the relay sends. Packet ids for our QoS > 0 PUBLISH /
    SUBSCRIBE come from next_pid()."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, level=5):
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, timeout)
        self.level = level
        self.connack = None
        self.eid = None
        self.client_id = None
        self.topic = None          # subscribe-topic from CONNACK (v5)
        self.packets = []          # received and not yet consumed
        self._pid = 0

    def next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    # -- output
    def send_packet(self, data):
        self.send_raw(data)

    def connect(self, client_id="", *, eid=None, level=None, expect=0, props=None,
                request_response_info=False, timeout=None, **kw):
        """CONNECT as CLIENT_ID; v5 adds user property usp-endpoint-id = EID when given
        (PROPS: further v5 properties, a list of (id, value)). Returns the CONNACK,
        asserting its reason is EXPECT unless EXPECT is None."""
        if level is not None:
            self.level = level
        pr = list(props or ())
        if self.level == 5 and eid is not None:
            pr.append((P_USER_PROPERTY, ("usp-endpoint-id", eid)))
        if self.level == 5 and request_response_info:
            pr.append((P_REQUEST_RESPONSE_INFO, 1))
        self.send_packet(mqtt_connect_packet(client_id, level=self.level, props=pr, **kw))
        p = self.recv_packet(timeout)
        assert p.type == MQTT_CONNACK, "expected CONNACK, got %r" % p
        if expect is not None:
            assert p.reason == expect, "CONNACK reason 0x%02x, expected 0x%02x (%r)" % (
                p.reason, expect, p)
        self.connack = p
        if p.reason == 0:
            self.client_id = p.props.get(P_ASSIGNED_CLIENT_ID, client_id)
            self.eid = eid if eid is not None else (client_id or None)
            self.topic = p.user_prop("subscribe-topic")
        return p

    def subscribe(self, filters, *, qos=1, props=(), timeout=None):
        """SUBSCRIBE to FILTERS (a filter, or a list of filters / (filter, options)) and
        return the SUBACK reason codes."""
        if isinstance(filters, str):
            filters = [filters]
        fl = [(f, qos) if isinstance(f, str) else f for f in filters]
        pid = self.next_pid()
        self.send_packet(mqtt_subscribe_packet(pid, fl, level=self.level, props=props))
        p = self.recv_type(MQTT_SUBACK, timeout)
        assert p.pid == pid, "SUBACK for %d, expected %d" % (p.pid, pid)
        assert len(p.reasons) == len(fl), "SUBACK has %d codes for %d filters" % (
            len(p.reasons), len(fl))
        return p.reasons

    def unsubscribe(self, filters, timeout=None):
        pid = self.next_pid()
        self.send_packet(mqtt_unsubscribe_packet(pid, filters, level=self.level))
        p = self.recv_type(MQTT_UNSUBACK, timeout)
        assert p.pid == pid
        return p.reasons

    def publish(self, topic, payload, *, qos=0, retain=False, dup=False, pid=None, props=(),
                wait=True, timeout=None):
        """PUBLISH; for QoS 1/2 with WAIT returns the PUBACK / PUBREC (checked for the pid).
        Returns the packet id used (0 for QoS 0) when not waiting."""
        if qos and pid is None:
            pid = self.next_pid()
        self.send_packet(mqtt_publish_packet(topic, payload, level=self.level, qos=qos,
                                             retain=retain, dup=dup, pid=pid, props=props))
        if not qos or not wait:
            return pid or 0
        p = self.recv_type(MQTT_PUBACK if qos == 1 else MQTT_PUBREC, timeout)
        assert p.pid == pid, "%s for %d, expected %d" % (p.name, p.pid, pid)
        return p

    def send_record(self, record, topic=None, *, reply_to=None, qos=0, content_type=None,
                    props=(), **kw):
        """Publish RECORD. TOPIC defaults to the default-template topic of its to_id.
        REPLY_TO: v5 Response Topic, 3.1.1 "/reply-to=" suffix (default: our own
        subscribe topic when known; "" for none). v5 CONTENT_TYPE defaults to usp.msg
        ("" for none)."""
        if topic is None:
            topic = mqtt_topic(decode_record(record).to_id)
        reply = self.topic if reply_to is None else reply_to
        pr = list(props)
        if self.level == 5:
            ct = MQTT_CONTENT_TYPE if content_type is None else content_type
            if ct:
                pr.append((P_CONTENT_TYPE, ct))
            if reply:
                pr.append((P_RESPONSE_TOPIC, reply))
        elif reply:
            topic += reply_to_suffix(reply)
        return self.publish(topic, record, qos=qos, props=pr, **kw)

    def send_ack(self, ptype, pid, reason=None):
        self.send_packet(mqtt_ack_packet(ptype, pid, level=self.level, reason=reason))

    def ping(self, timeout=None):
        self.send_packet(mqtt_packet(MQTT_PINGREQ, 0, b""))
        self.recv_type(MQTT_PINGRESP, timeout)

    def disconnect(self, reason=None):
        body = bytes([reason]) if (reason is not None and self.level == 5) else b""
        self.send_packet(mqtt_packet(MQTT_DISCONNECT, 0, body))

    # -- input
    def _read_packet(self, d):
        while True:
            if self.buf:
                try:
                    n, off = _read_vbi(self.buf, 1)
                except ValueError as e:
                    if len(self.buf) >= 5:
                        raise AssertionError("bad Remaining Length from the relay: %s" % e)
                    n = None
                if n is not None and len(self.buf) >= off + n:
                    first = self.buf[0]
                    body = bytes(self.buf[off:off + n])
                    del self.buf[:off + n]
                    return mqtt_parse(first >> 4, first & 15, body, self.level)
            self._fill(d)

    def recv_packet(self, timeout=None):
        """Next packet (decoded). Raises Closed / TimeoutError."""
        if self.packets:
            return self.packets.pop(0)
        return self._read_packet(_Deadline(self.timeout if timeout is None else timeout))

    def recv_type(self, ptype, timeout=None):
        """Next packet of PTYPE; PUBLISHes met on the way are kept for recv_publish; any
        other type is an error."""
        d = _Deadline(self.timeout if timeout is None else timeout)
        for i, p in enumerate(self.packets):
            if p.type == ptype:
                return self.packets.pop(i)
        while True:
            p = self._read_packet(d)
            if p.type == ptype:
                return p
            assert p.type == MQTT_PUBLISH, "expected %s, got %r" % (
                MQTT_TYPE_NAMES[ptype], p)
            self.packets.append(p)

    def recv_publish(self, timeout=None, ack=True):
        """Next PUBLISH; a QoS 1 one is PUBACKed when ACK."""
        p = self.recv_packet(timeout)
        assert p.type == MQTT_PUBLISH, "expected PUBLISH, got %r" % p
        if ack and p.qos == 1:
            self.send_ack(MQTT_PUBACK, p.pid)
        return p

    def recv_record(self, timeout=None):
        return self.recv_publish(timeout).payload

    def expect_nothing(self, timeout=0.3):
        """No packet arrives within TIMEOUT and the connection stays open."""
        if self.packets:
            raise AssertionError("unexpected %r" % self.packets[0])
        try:
            p = self.recv_packet(timeout)
        except TimeoutError:
            return
        raise AssertionError("unexpected %r" % p)

    def expect_disconnect(self, reason, timeout=None):
        """v5: the next packet is DISCONNECT with REASON, then the relay closes. 3.1.1:
        the relay just closes (nothing more arrives). Returns the DISCONNECT (or None)."""
        t = self.timeout if timeout is None else timeout
        if self.level != 5:
            rest = self.wait_closed(t)
            assert rest == b"" and not self.packets, "data before close: %r" % rest[:100]
            return None
        p = self.recv_packet(t)
        assert p.type == MQTT_DISCONNECT, "expected DISCONNECT, got %r" % p
        assert p.reason == reason, "DISCONNECT reason 0x%02x, expected 0x%02x (%r)" % (
            p.reason, reason, p)
        rest = self.wait_closed(t)
        assert rest == b"", "bytes after DISCONNECT: %r" % rest[:100]
        return p

    def expect_close(self, timeout=None):
        """The relay closes without sending anything (more)."""
        rest = self.wait_closed(self.timeout if timeout is None else timeout)
        assert rest == b"" and not self.packets, "data before close: %r" % rest[:100]
