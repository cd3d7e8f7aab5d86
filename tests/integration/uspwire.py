"""uspwire.py — wire helpers for the usprelayd integration tests.

Everything a test needs to talk to a real relay, in pure Python and blocking sockets:

* USP Record encoding (a tiny protobuf writer for usp-record.proto) and a small decoder
  to read the header and Connect Record fields back (``encode_record`` and the
  ``no_session`` / ``session_context`` / ``uds_connect`` / ``stomp_connect`` /
  ``mqtt_connect`` / ``websocket_connect`` / ``disconnect`` shorthands; ``decode_record``).
* ``StompClient``: a raw STOMP 1.2 client (CONNECT/STOMP, SUBSCRIBE, SEND, content-length
  aware frame reader that skips heart-beat EOLs and counts them).
* ``UdsClient``: a raw USP UDS client (``_USP`` frames, TLVs, handshake, Records).

Wire facts: /work/shared/spec/usp-mtp-notes.md §1 (Record), §4 (STOMP), §6 (UDS).
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
