"""uspwire.py — wire helpers for the usprelayd integration tests.

Everything a test needs to talk to a real relay, in pure Python and blocking sockets:

* USP Record encoding (a tiny protobuf writer for usp-record.proto) and a small decoder
  to read the header and Connect Record fields back (``encode_record`` and the
  ``no_session`` / ``session_context`` / ``uds_connect`` / ``stomp_connect`` /
  ``mqtt_connect`` / ``websocket_connect`` / ``disconnect`` shorthands; ``decode_record``).
* ``StompClient``: a raw STOMP 1.2 client (CONNECT/STOMP, SUBSCRIBE, SEND, content-length
  aware frame reader that skips heart-beat EOLs and counts them).
* ``UdsClient``: a raw USP UDS client (``_USP`` frames, TLVs, handshake, Records).
* ``WsClient``: a raw RFC 6455 client (handshake with any path/query/headers/subprotocols,
  the HTTP status of a refusal, masked frames of any kind, fragmentation, a frame reader
  that answers and records Pings and reports every frame it got), ``WsStream`` (a
  socket-like byte stream over its binary messages, for MQTT over WebSocket) and the frame
  codec under it (``ws_frame``, ``ws_parse_frame``).
* TLS: ``StompClient``, ``MqttClient`` and ``WsClient`` take ``ssl_context=`` (an
  ``ssl.SSLContext``; the socket is wrapped and the handshake done before the MTP speaks)
  and ``server_hostname=`` (SNI and the name checked; default the host). A TLS alert or
  error while reading reads as ``Closed``, the ``ssl.SSLError`` kept in ``.ssl_error``.
* ``MqttClient``: a raw MQTT 3.1.1 / 5.0 client (CONNECT with any flags, will and v5
  properties incl. user properties; SUBSCRIBE/UNSUBSCRIBE; PUBLISH QoS 0/1/2 with the
  acks; PINGREQ; a decoder for every server packet), and the packet builders under it
  (``mqtt_*_packet``, ``mqtt_props``) for bytes no library would send.

Wire facts: /work/shared/spec/usp-mtp-notes.md §1 (Record), §3 (WebSocket), §4 (STOMP),
§5 (MQTT), §6 (UDS).
Nothing here sleeps blindly: reads block with a timeout and raise ``TimeoutError``; a
peer close raises ``Closed``.
"""

import base64
import dataclasses
import hashlib
import os
import socket
import ssl
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


def no_session_of_size(to_id, from_id, size):
    """A NoSessionContext Record of exactly SIZE bytes (random payload), or the smallest
    one these IDs allow when SIZE is below that."""
    base = len(no_session(to_id, from_id, b""))
    if size <= base:
        return no_session(to_id, from_id, b"")
    for p in range(max(1, size - base - 12), size):
        body = 1 + len(varint(p)) + p
        if base - 2 + 1 + len(varint(body)) + body == size:
            return no_session(to_id, from_id, os.urandom(p))
    raise ValueError("no Record of %d bytes" % size)


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


def tcp_connect(host, port, timeout, ssl_context=None, server_hostname=None):
    """A TCP connection to HOST:PORT with TCP_NODELAY; with SSL_CONTEXT wrapped in TLS
    (handshake done here; SNI and the checked name are SERVER_HOSTNAME, default HOST).
    Handshake failures raise ssl.SSLError / OSError with the socket closed."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ssl_context is None:
        return sock
    try:
        return ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
    except BaseException:
        sock.close()
        raise


class _SockClient:
    """Shared socket plumbing: buffered reads with a deadline."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.ssl_error = None     # the ssl.SSLError that ended a TLS connection, if any

    @property
    def tls(self):
        """The ssl.SSLSocket of a TLS connection (None when plain)."""
        return self.sock if isinstance(self.sock, ssl.SSLSocket) else None

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
        except ssl.SSLError as e:
            # An alert from the relay (e.g. a TLS 1.3 client certificate refused after the
            # client's side of the handshake finished) ends the connection like an EOF.
            self.eof = True
            self.ssl_error = e
            raise Closed("TLS: %s" % e) from None
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

    def __init__(self, port, host="127.0.0.1", timeout=5.0, *, ssl_context=None,
                 server_hostname=None):
        sock = tcp_connect(host, port, timeout, ssl_context, server_hostname)
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

    def __init__(self, port, host="127.0.0.1", timeout=5.0, level=5, sock=None, *,
                 ssl_context=None, server_hostname=None):
        """SOCK: an already connected socket-like object to run on instead of a new TCP
        connection to PORT (e.g. a WsStream for MQTT over WebSocket). SSL_CONTEXT: TLS
        on the new TCP connection (see tcp_connect)."""
        if sock is None:
            sock = tcp_connect(host, port, timeout, ssl_context, server_hostname)
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


# ----------------------------------------------------------------- WebSocket (RFC 6455)

WS_CONT, WS_TEXT, WS_BINARY, WS_CLOSE, WS_PING, WS_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
WS_OPCODE_NAMES = {WS_CONT: "CONT", WS_TEXT: "TEXT", WS_BINARY: "BINARY", WS_CLOSE: "CLOSE",
                   WS_PING: "PING", WS_PONG: "PONG"}
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_SUBPROTOCOL = "v1.usp"
# Close codes (RFC 6455 §7.4.1) the relay uses.
WS_NORMAL, WS_GOING_AWAY, WS_UNSUPPORTED_DATA, WS_POLICY, WS_TOO_BIG = 1000, 1001, 1003, 1008, 1009
WS_MAX_HEAD = 65536           # bound on the HTTP response head we accept
WS_MAX_BODY = 65536           # bound on a refusal's body we read


class WsClosed(Closed):
    """The peer sent a Close frame (code None when it had no body)."""

    def __init__(self, code, reason):
        super().__init__("close frame code=%s reason=%r" % (code, reason))
        self.code = code
        self.reason = reason


def ws_accept(key):
    """Sec-WebSocket-Accept for the request's Sec-WebSocket-Key KEY."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_mask(data, key):
    """DATA XOR the 4-byte KEY repeated (masking and unmasking are the same). Done as one
    big-integer XOR: linear and fast enough for multi-MiB payloads in pure Python."""
    n = len(data)
    if not n:
        return b""
    k = (bytes(key) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def ws_frame(opcode, payload=b"", *, fin=True, mask=True, rsv=0, mask_key=None, length=None):
    """Bytes of one frame. Client frames are masked (MASK=False for hostile tests);
    MASK_KEY defaults to 4 random bytes; LENGTH overrides the length written in the header
    (the payload bytes stay as given)."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    n = len(payload) if length is None else length
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4) if mask_key is None else bytes(mask_key)
    return head + key + ws_mask(payload, key)


def ws_close_body(code=WS_NORMAL, reason=""):
    """Body of a Close frame (empty when CODE is None)."""
    if code is None:
        return b""
    return struct.pack(">H", code) + (reason.encode() if isinstance(reason, str) else reason)


@dataclasses.dataclass
class WsFrame:
    fin: bool
    opcode: int
    payload: bytes
    rsv: int = 0
    masked: bool = False

    def __repr__(self):
        return "<WsFrame %s fin=%d rsv=%d masked=%d len=%d>" % (
            WS_OPCODE_NAMES.get(self.opcode, "op%d" % self.opcode), self.fin, self.rsv,
            self.masked, len(self.payload))


def ws_parse_frame(buf, max_payload=1 << 31):
    """(WsFrame, bytes used) for the first complete frame in BUF, or None while it is
    incomplete. A length above MAX_PAYLOAD raises ValueError (never waits for it)."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    n, off = b1 & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        (n,) = struct.unpack_from(">H", buf, 2)
        off = 4
    elif n == 127:
        if len(buf) < 10:
            return None
        (n,) = struct.unpack_from(">Q", buf, 2)
        off = 10
    if n > max_payload:
        raise ValueError("frame of %d bytes is above %d" % (n, max_payload))
    masked = bool(b1 & 0x80)
    key = None
    if masked:
        if len(buf) < off + 4:
            return None
        key = bytes(buf[off:off + 4])
        off += 4
    if len(buf) < off + n:
        return None
    payload = bytes(buf[off:off + n])
    if masked:
        payload = ws_mask(payload, key)
    return WsFrame(bool(b0 & 0x80), b0 & 0x0F, payload, (b0 >> 4) & 7, masked), off + n


def ws_parse_close(payload):
    """(code, reason) of a Close frame body (code None for an empty body)."""
    if not payload:
        return None, ""
    assert len(payload) >= 2, "Close body of 1 byte"
    (code,) = struct.unpack(">H", payload[:2])
    return code, payload[2:].decode("utf-8")


def ws_query(eid):
    """The query component naming EID (R-WS.10b): "eid=" + EID percent-encoded."""
    return "eid=" + pct_encode(eid)


class WsClient(_SockClient):
    """Raw WebSocket client over TCP.

    The constructor connects and (unless HANDSHAKE=False) sends the opening handshake for
    PATH with QUERY (default: "eid=<EID pct-encoded>" when EID is given, else none),
    offering PROTOCOLS (None or () for no Sec-WebSocket-Protocol header) and, when EXT is
    set, ``Sec-WebSocket-Extensions`` (True: ``bbf-usp-protocol; eid="<EID>"``; a str: that
    value). EXTRA_HEADERS [(name, value)] are added; HOST_HEADER replaces "host:port";
    ORIGIN adds an Origin header; PLAIN=True sends a GET without the upgrade headers.

    After the handshake: ``status`` (int), ``reason``, ``headers`` (lower-case name ->
    values joined by ", "), ``header_list``, ``body`` (of a refusal, by Content-Length).
    A 101 is checked (Upgrade, Connection, Sec-WebSocket-Accept); any other status is just
    reported. Frames: ``frames`` logs every frame received as (opcode, fin, payload
    length); ``last_frame_sizes`` holds the payload sizes of the frames of the last data
    message; ``pings`` / ``pongs`` the payloads of control frames received. Pings are
    answered at once unless AUTO_PONG is False. Reads raise TimeoutError / Closed /
    WsClosed (a Close frame; answered with a Close unless one was sent already).
    SSL_CONTEXT / SERVER_HOSTNAME: wss, see tcp_connect."""

    def __init__(self, port, path="/usp", *, host="127.0.0.1", eid=None, query=None,
                 protocols=(WS_SUBPROTOCOL,), ext=False, extra_headers=(), host_header=None,
                 origin=None, plain=False, timeout=5.0, handshake=True, auto_pong=True,
                 max_message=64 << 20, ssl_context=None, server_hostname=None):
        sock = tcp_connect(host, port, timeout, ssl_context, server_hostname)
        super().__init__(sock, timeout)
        self.port = port
        self.path = path
        self.eid = eid
        self.auto_pong = auto_pong
        self.max_message = max_message
        self.key = base64.b64encode(os.urandom(16)).decode()
        if query is None and eid is not None:
            query = ws_query(eid)
        target = path + ("?" + query if query is not None else "")
        h = [("Host", host_header if host_header is not None else "%s:%d" % (host, port))]
        if not plain:
            h += [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                  ("Sec-WebSocket-Key", self.key), ("Sec-WebSocket-Version", "13")]
            if protocols:
                h.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
            if ext is True:
                h.append(("Sec-WebSocket-Extensions", 'bbf-usp-protocol; eid="%s"' % eid))
            elif ext:
                h.append(("Sec-WebSocket-Extensions", ext))
        if origin is not None:
            h.append(("Origin", origin))
        h += list(extra_headers)
        self.request = ("GET %s HTTP/1.1\r\n" % target +
                        "".join("%s: %s\r\n" % kv for kv in h) + "\r\n").encode()
        self.status = None
        self.reason = ""
        self.headers = {}
        self.header_list = []
        self.body = b""
        self.frames = []
        self.last_frame_sizes = []
        self.pings = []
        self.pongs = []
        self.close_code = None
        self.close_reason = None
        self.close_sent = False
        self.messages = []          # (opcode, payload, frame count) read while waiting for a Pong
        self._parts = []            # frames of a data message not yet complete
        self._op = None
        if handshake:
            self.handshake()

    # -- handshake
    def handshake(self, timeout=None):
        """Send the request and read the response head; return the status."""
        d = _Deadline(self.timeout if timeout is None else timeout)
        self.send_raw(self.request)
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            assert len(self.buf) <= WS_MAX_HEAD, "HTTP response head above %d bytes" % WS_MAX_HEAD
            self._fill(d)
        head = bytes(self.buf[:end]).decode("iso-8859-1")
        del self.buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        assert len(parts) >= 2 and parts[0].startswith("HTTP/1."), "bad status line %r" % lines[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        for ln in lines[1:]:
            k, sep, v = ln.partition(":")
            assert sep, "bad header line %r" % ln
            k, v = k.strip().lower(), v.strip()
            self.header_list.append((k, v))
            self.headers[k] = self.headers[k] + ", " + v if k in self.headers else v
        if self.status == 101:
            assert self.header("upgrade", "").lower() == "websocket", self.headers
            conn = [t.strip().lower() for t in self.header("connection", "").split(",")]
            assert "upgrade" in conn, self.headers
            assert self.header("sec-websocket-accept") == ws_accept(self.key), self.headers
        else:
            cl = self.header("content-length")
            if cl is not None:
                n = min(int(cl), WS_MAX_BODY)
                try:
                    while len(self.buf) < n:
                        self._fill(d)
                except (Closed, TimeoutError):
                    pass
                self.body = bytes(self.buf[:n])
                del self.buf[:n]
        return self.status

    def header(self, name, default=None):
        """Response header NAME (case-insensitive; repeats joined by ", ")."""
        return self.headers.get(name.lower(), default)

    @property
    def subprotocol(self):
        return self.header("sec-websocket-protocol")

    # -- output
    def send_frame(self, opcode, payload=b"", **kw):
        self.send_raw(ws_frame(opcode, payload, **kw))

    def send_binary(self, data):
        self.send_frame(WS_BINARY, data)

    send_record = send_binary

    def send_text(self, text):
        self.send_frame(WS_TEXT, text)

    def send_ping(self, payload=b""):
        self.send_frame(WS_PING, payload)

    def send_pong(self, payload=b""):
        self.send_frame(WS_PONG, payload)

    def send_close(self, code=WS_NORMAL, reason=""):
        self.close_sent = True
        self.send_frame(WS_CLOSE, ws_close_body(code, reason))

    def send_fragmented(self, data, frames=None, *, sizes=None, opcode=WS_BINARY, between=None):
        """Send DATA as one message in FRAMES frames of nearly equal size (or of the
        payload SIZES given; their sum must be len(DATA)); BETWEEN (bytes) is written after
        every frame but the last, e.g. a Ping, which RFC 6455 allows mid-message."""
        if sizes is None:
            q, r = divmod(len(data), frames)
            sizes = [q + (1 if i < r else 0) for i in range(frames)]
        assert sum(sizes) == len(data) and sizes, "sizes do not cover the data"
        out, off = [], 0
        for i, n in enumerate(sizes):
            last = i == len(sizes) - 1
            out.append(ws_frame(opcode if i == 0 else WS_CONT, data[off:off + n], fin=last))
            if between and not last:
                out.append(between)
            off += n
        self.send_raw(b"".join(out))

    # -- input
    def recv_frame(self, timeout=None, deadline=None):
        """Next frame as the relay sent it (control frames are NOT handled here). Server
        frames must be unmasked with RSV 0 (no extension with RSV bits is negotiated)."""
        d = deadline or _Deadline(self.timeout if timeout is None else timeout)
        while True:
            try:
                got = ws_parse_frame(self.buf, self.max_message)
            except ValueError as e:
                raise AssertionError("relay frame: %s" % e) from None
            if got:
                f, used = got
                del self.buf[:used]
                self.frames.append((f.opcode, f.fin, len(f.payload)))
                assert not f.masked, "the relay masked a frame (RFC 6455 §5.1)"
                assert f.rsv == 0, "RSV bits 0x%x set by the relay" % f.rsv
                return f
            self._fill(d)

    def _control(self, f):
        assert f.fin and len(f.payload) <= 125, "bad control frame %r" % f
        if f.opcode == WS_PING:
            self.pings.append(f.payload)
            if self.auto_pong and not self.close_sent:
                try:
                    self.send_pong(f.payload)
                except OSError:
                    pass
        elif f.opcode == WS_PONG:
            self.pongs.append(f.payload)
        elif f.opcode == WS_CLOSE:
            self.close_code, self.close_reason = ws_parse_close(f.payload)
            if not self.close_sent:
                try:
                    self.send_close(self.close_code if self.close_code not in
                                    (None, 1005, 1006, 1015) else None)
                except OSError:
                    pass
            raise WsClosed(self.close_code, self.close_reason)
        else:
            raise AssertionError("reserved opcode 0x%x from the relay" % f.opcode)

    def recv_message(self, timeout=None):
        """Next data message: (opcode, payload, frame count). Control frames on the way
        are handled (see the class). Raises WsClosed on a Close frame."""
        if self.messages:
            return self.messages.pop(0)
        d = _Deadline(self.timeout if timeout is None else timeout)
        while True:
            f = self.recv_frame(deadline=d)
            if f.opcode >= 8:
                self._control(f)
                continue
            if self._op is None:
                assert f.opcode in (WS_TEXT, WS_BINARY), "continuation without a start: %r" % f
                self._op = f.opcode
            else:
                assert f.opcode == WS_CONT, "new message inside a fragmented one: %r" % f
            self._parts.append(f.payload)
            assert sum(map(len, self._parts)) <= self.max_message, "message above max_message"
            if f.fin:
                parts, op = self._parts, self._op
                self._parts, self._op = [], None
                self.last_frame_sizes = [len(p) for p in parts]
                return op, b"".join(parts), len(parts)

    def recv_record(self, timeout=None):
        """Payload of the next message, which must be binary."""
        op, payload, _n = self.recv_message(timeout)
        assert op == WS_BINARY, "expected a binary message, got opcode %d %r" % (op, payload[:100])
        return payload

    def ping(self, payload=b"", timeout=None):
        """Send a Ping and wait for the Pong with the same payload (data messages that
        arrive meanwhile are kept for recv_message). Returns the Pong payload."""
        d = _Deadline(self.timeout if timeout is None else timeout)
        seen = len(self.pongs)
        self.send_ping(payload)
        while True:
            for p in self.pongs[seen:]:
                if p == payload:
                    return p
            seen = len(self.pongs)
            f = self.recv_frame(deadline=d)
            if f.opcode >= 8:
                self._control(f)
                continue
            self._parts.append(f.payload)
            if self._op is None:
                self._op = f.opcode
            if f.fin:
                self.messages.append((self._op, b"".join(self._parts), len(self._parts)))
                self._parts, self._op = [], None

    def expect_nothing(self, timeout=0.3):
        """No data message within TIMEOUT and no close (Pings are answered meanwhile)."""
        try:
            op, p, _n = self.recv_message(timeout)
        except TimeoutError:
            return
        raise AssertionError("unexpected message opcode %d %r" % (op, p[:100]))

    def stay_open(self, seconds):
        """Read for SECONDS (answering Pings); fail on any message, Close or EOF."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.expect_nothing(left)

    def expect_close(self, timeout=None, tcp=True):
        """The relay sends a Close frame (no data message before it); returns (code,
        reason). With TCP, the relay must also close the TCP connection afterwards."""
        t = self.timeout if timeout is None else timeout
        try:
            op, p, _n = self.recv_message(t)
        except WsClosed as e:
            if tcp:
                rest = self.wait_closed(t)
                assert rest == b"", "bytes after the Close frame: %r" % rest[:100]
            return e.code, e.reason
        except Closed as e:
            raise AssertionError("TCP closed without a Close frame (%s)" % e) from None
        raise AssertionError("expected a Close frame, got opcode %d %r" % (op, p[:100]))

    def tcp_closed_within(self, timeout):
        """True if the relay closes the TCP connection within TIMEOUT, whatever it sends
        first (Close frame, Pings); Pings are not answered meanwhile."""
        d = _Deadline(max(timeout, 0.001))
        try:
            while True:
                self._fill(d)
                del self.buf[:]
        except Closed:
            return True
        except TimeoutError:
            return False


class WsStream:
    """A socket-like byte stream over a WsClient's binary messages, so a client written
    for TCP (MqttClient) runs over WebSocket: sendall() sends one binary message, recv()
    returns bytes of the messages received; a Close frame or EOF reads as b""."""

    def __init__(self, ws):
        self.ws = ws
        self.pending = bytearray()
        self.timeout = ws.timeout

    def settimeout(self, t):
        self.timeout = t

    def setsockopt(self, *args):
        pass

    def sendall(self, data):
        self.ws.send_binary(bytes(data))

    def recv(self, n):
        if not self.pending:
            try:
                op, payload, _c = self.ws.recv_message(self.timeout)
            except TimeoutError:
                raise socket.timeout("timed out") from None
            except Closed:
                return b""
            assert op == WS_BINARY, "MQTT over WebSocket needs binary messages, got %d" % op
            self.pending += payload
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    def close(self):
        self.ws.close()
