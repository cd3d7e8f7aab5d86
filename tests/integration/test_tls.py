"""TLS on the relay's STOMP, MQTT and WebSocket listeners, and endpoint identity taken from
client certificates (docs/configuration.md "TLS", relay/tls.h; spec notes §2: R-SEC.0a,
R-SEC.4b/4c).

A throw-away PKI (tlsfix.py, openssl command line, EC P-256) is made once per session. Each
relay gets TLS listeners "stomps", "mqtts" and "wss" beside its four plain default ones.
Covered: Records byte-identical between TLS endpoints of every kind (STOMP, MQTT 5, MQTT
3.1.1, wss) and plain STOMP / UDS / MQTT / WebSocket peers, over TLS 1.3 and 1.2; the
endpoint ID from the certificate's SAN URIs (declared IDs must be one of them: STOMP ERROR,
CONNACK 0x87 / 5, HTTP 403, logged identity_refused with its reason; no declared ID binds
the certificate's; two IDs; cn_map and no_cert_id); client_certs required / optional with
no certificate, an untrusted CA, an expired and a revoked certificate (handshake refused with
the matching alert, tls_failed logged); spoofed from_id dropped on a TLS-bound connection;
SNI (exact, wildcard, default) with client verification after the switch; min_version 1.3;
third-party clients (mosquitto_pub/sub, paho-mqtt, python3-websockets, stomp.py) over TLS;
the plain listeners serving throughout.
"""

import asyncio
import queue
import re
import shutil
import socket
import ssl

import pytest

import mosq
import tlsfix
import uspwire as w
from mosq import MosqSub, mosq_pub, needs_mosquitto
from conftest import free_port

AGENT = "os::00256D-tls1"
AGENT2 = "os::00256D-tls2"
CTRL = "self::tls-ctrl"
TWO = ("os::00256D-two1", "self::tls-two2")
CN42 = "os::00256D-cn42"
OTHER = "os::00256D-not-mine"
SPOOF = "os::00256D-spoof"

KINDS = ["stomp", "mqtt5", "mqtt4", "ws"]
LISTENER = {"stomp": "stomps", "mqtt5": "mqtts", "mqtt4": "mqtts", "ws": "wss"}
PLAIN_KINDS = ["stomp", "uds", "mqtt5", "mqtt4", "ws"]
WAIT = 10.0

# Alerts the relay's OpenSSL sends for each refusal, as Python's ssl module names them.
ALERT_NO_CERT_13 = "certificate required"
ALERT_NO_CERT_12 = "handshake failure"
ALERT = {"rogue": "unknown ca", "expired": "certificate expired",
         "revoked": "certificate revoked"}

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")


# ----------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return tlsfix.make_pki(tmp_path_factory.mktemp("pki"))


def alt_sni(pki, name=tlsfix.ALT_NAME):
    return {"server_name": name, "certificate": pki.cert("alt"), "key": pki.key("alt")}


@pytest.fixture
def tls_relay(start_relay, pki):
    """Factory: a relay with its four plain listeners plus "stomps", "mqtts" and "wss"
    whose `tls` group is pki.server_tls(**TLS) (WS_MQTT: the wss one's mqtt_listener).
    Every port is picked here, distinct."""

    def start(*, relay_overrides=None, ws_mqtt=None, **tls):
        # A port free when picked may be taken (by any client's ephemeral port) before the
        # relay binds it: then the relay exits at start-up and another set is tried.
        for attempt in range(3):
            r = start_once(relay_overrides, ws_mqtt, tls)
            try:
                r.wait_ready()
                return r
            except AssertionError:
                if attempt == 2 or "Address already in use" not in r.log():
                    raise
                r.kill()

    def start_once(relay_overrides, ws_mqtt, tls):
        group = pki.server_tls(**tls)
        ports = set()
        while len(ports) < 6:
            ports.add(free_port())
        p = sorted(ports)
        extra = [
            {"name": "stomps", "type": "stomp", "address": "127.0.0.1", "port": p[3],
             "tls": group},
            {"name": "mqtts", "type": "mqtt", "address": "127.0.0.1", "port": p[4],
             "tls": group},
            {"name": "wss", "type": "websocket", "address": "127.0.0.1", "port": p[5],
             "paths": ["/usp"], "tls": group},
        ]
        if ws_mqtt:
            extra[2]["mqtt_listener"] = ws_mqtt
        ov = dict(relay_overrides or {})
        return start_relay(stomp={"port": p[0]}, mqtt={"port": p[1]}, ws={"port": p[2]},
                           extra_listeners=extra, wait_ready=False, **ov)

    return start


# ----------------------------------------------------------------- helpers

def payload(tag):
    """Every byte value, NULs included, and a tag."""
    return bytes(range(256)) + b"\x00\x00" + tag.encode()


def tls_port(relay, kind):
    return relay.port_of(LISTENER[kind])


def tls_endpoint(relay, pki, kind, cert, declare, bound=None, *, max_version=None,
                 server_hostname=None, check_hostname=True, client_id="tls-dev-1"):
    """An endpoint of KIND on the TLS listener presenting CERT (None: no certificate),
    declaring DECLARE in its MTP handshake (None: no ID: STOMP sends no endpoint-id, MQTT
    v5 no usp-endpoint-id and an empty client id, 3.1.1 CLIENT_ID, WebSocket no eid) and
    expected to be bound to BOUND (default DECLARE); .eid is BOUND."""
    bound = bound or declare
    ctx = pki.client_context(cert, max_version=max_version, check_hostname=check_hostname)
    kw = {"port": tls_port(relay, kind), "ssl_context": ctx,
          "server_hostname": server_hostname}
    if kind == "stomp":
        c = relay.stomp_endpoint(declare, **kw)
        assert c.dest == w.endpoint_dest(bound)
    elif kind == "mqtt5":
        c = relay.mqtt_endpoint(declare, **kw)
        assert c.topic == w.mqtt_topic(bound), c.connack
    elif kind == "mqtt4":
        c = relay.mqtt_endpoint(bound, level=4, client_id=declare or client_id, **kw)
    else:
        c = relay.ws_endpoint(declare, **kw)
    c.eid = bound
    return c


def wait_bound(relay, kind, eid, start=0):
    return relay.wait_log(r'event=endpoint_bound [^\n]*listener=%s [^\n]*eid="%s"'
                          % (LISTENER[kind], re.escape(eid)), start=start)


def plain_endpoint(relay, kind, tag):
    eid = ("os::" if kind == "mqtt4" else "self::") + "plain-" + tag + "-" + kind
    return relay.endpoint(kind, eid)


def exchange(a, b, tag):
    """A Record A -> B and one B -> A, each byte-identical."""
    r = w.no_session(b.eid, a.eid, payload("%s %s->%s" % (tag, a.eid, b.eid)))
    a.send_record(r)
    assert b.recv_record() == r
    r = w.session_context(a.eid, b.eid, [payload("%s %s->%s" % (tag, b.eid, a.eid))])
    b.send_record(r)
    assert a.recv_record() == r


def identity_refused(relay, pki, kind, cert, declare, reason, *, client_id="tls-dev-1"):
    """CERT declaring DECLARE on KIND's TLS listener is refused with the MTP's answer (STOMP
    ERROR then close, MQTT v5 CONNACK 0x87 / 3.1.1 return code 5 then close, HTTP 403) and
    the relay logs identity_refused with REASON. Returns the log match."""
    start = len(relay.log())
    ctx = pki.client_context(cert)
    port = tls_port(relay, kind)
    if kind == "stomp":
        c = relay.stomp_client(port=port, ssl_context=ctx)
        f = c.connect(declare, expect="ERROR")
        assert f.get("message"), f.headers
        rest = c.wait_closed()
        assert rest.strip(b"\r\n") == b"", rest[:200]
    elif kind in ("mqtt5", "mqtt4"):
        level = 5 if kind == "mqtt5" else 4
        c = relay.mqtt_client(port=port, level=level, ssl_context=ctx)
        if level == 5:
            c.connect("", eid=declare, expect=0x87)
        else:
            c.connect(declare or client_id, expect=5)
        c.expect_close()
    else:
        c = relay.ws_client("/usp", eid=declare, port=port, ssl_context=ctx)
        assert c.status == 403, (c.status, c.reason, c.headers, c.body[:200])
        assert c.is_closed(5.0)
    said = re.escape(declare) if declare is not None else "-"
    m = relay.wait_log(r'event=identity_refused [^\n]*listener=%s [^\n]*reason=%s '
                       r'declared="?%s"?[^\n]*' % (LISTENER[kind], reason, said), start=start)
    assert not re.search(r"event=endpoint_bound [^\n]*listener=%s " % LISTENER[kind],
                         relay.log()[start:]), relay.log()[start:]
    return m


def _probe_bytes(kind, eid):
    """The MTP's opening bytes, for a connection whose TLS handshake the client thinks
    succeeded."""
    if kind == "stomp":
        return w.stomp_frame("STOMP", [("accept-version", "1.2"), ("host", "localhost"),
                                       ("endpoint-id", eid)], escape=False)
    if kind in ("mqtt5", "mqtt4"):
        level = 5 if kind == "mqtt5" else 4
        return w.mqtt_connect_packet(eid if level == 4 else "", level=level,
                                     props=[(w.P_USER_PROPERTY, ("usp-endpoint-id", eid))])
    return ("GET /usp?%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v1.usp\r\n\r\n"
            % w.ws_query(eid)).encode()


def tls_refused(relay, kind, ctx, *, eid=AGENT, server_hostname=None, alert=None,
                log_error=None):
    """The TLS handshake on KIND's TLS listener with CTX fails: the client's handshake
    raises, or (TLS 1.3: the server judges the client's certificate after the client has
    finished) the relay ends the connection with an alert before anything else; the MTP
    never answers. ALERT: a text the client's ssl error must contain. The relay logs
    tls_failed for this very connection (its error containing LOG_ERROR when given) and
    binds nothing. Returns the client's error text."""
    start = len(relay.log())
    port = tls_port(relay, kind)
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    me = sock.getsockname()[1]
    err = None
    try:
        try:
            s = ctx.wrap_socket(sock, server_hostname=server_hostname or "127.0.0.1")
        except (ssl.SSLError, ConnectionError) as e:
            err = e
        else:
            sock = s
            try:
                # Nothing is sent: a server that accepted the handshake waits for the MTP
                # and this read times out; one that refused sends its alert and closes.
                data = s.recv(4096)
                assert data == b"", "application data on a refused TLS connection: %r" % data
                err = "closed without an alert"
            except socket.timeout:
                raise AssertionError("the relay accepted the TLS handshake (%s, %s)"
                                     % (s.version(), kind)) from None
            except (ssl.SSLError, ConnectionError) as e:
                err = e
            if not isinstance(err, ssl.SSLError):
                # Whatever the alert, the MTP must not answer either.
                try:
                    s.sendall(_probe_bytes(kind, eid))
                    assert s.recv(4096) == b""
                except (ssl.SSLError, OSError):
                    pass
    finally:
        sock.close()
    text = str(err)
    if alert is not None:
        assert alert in text, "expected alert %r, got %r" % (alert, text)
    pat = r"event=tls_failed [^\n]*listener=%s peer=127\.0\.0\.1:%d [^\n]*" % (
        LISTENER[kind], me)
    if log_error:
        pat += r'error="[^"\n]*' + re.escape(log_error)
    relay.wait_log(pat, start=start)
    assert not re.search(r"event=endpoint_bound [^\n]*listener=%s " % LISTENER[kind],
                         relay.log()[start:])
    return text


# ----------------------------------------------------------------- Records over TLS

@pytest.mark.parametrize("kind", KINDS)
def test_records_byte_identical_tls_and_plain(tls_relay, pki, kind):
    """A KIND endpoint over TLS with the agent certificate (declaring its ID) exchanges
    Records byte-identical with a TLS controller of the next kind and with plain STOMP,
    UDS, MQTT 5, MQTT 3.1.1 and WebSocket peers; TLS 1.3 was negotiated and the
    relay's certificate verifies against the test CA."""
    relay = tls_relay()
    a = tls_endpoint(relay, pki, kind, "agent", AGENT)
    wait_bound(relay, kind, AGENT)
    assert a.tls.version() == "TLSv1.3"
    ckind = KINDS[(KINDS.index(kind) + 1) % len(KINDS)]
    c = tls_endpoint(relay, pki, ckind, "ctrl", CTRL)
    exchange(a, c, "tls<->tls")
    for pk in PLAIN_KINDS:
        peer = plain_endpoint(relay, pk, kind)
        exchange(a, peer, "tls<->plain")
    a.expect_nothing(0.1)
    c.expect_nothing(0.1)


def test_tls12_every_kind(tls_relay, pki):
    """A client limited to TLS 1.2 is served on every TLS listener (default min_version
    1.2) with its certificate verified during the 1.2 handshake."""
    relay = tls_relay()
    peer = relay.stomp_endpoint("self::plain-12")
    for kind in KINDS:
        a = tls_endpoint(relay, pki, kind, "agent", AGENT, max_version=ssl.TLSVersion.TLSv1_2)
        assert a.tls.version() == "TLSv1.2"
        exchange(a, peer, "tls12 " + kind)
        a.close()


def test_large_record_over_tls(tls_relay, pki):
    """A 1 MiB Record from STOMP over TLS to wss and back to MQTT over TLS: TLS records
    are reassembled into the one MTP frame, byte-identical."""
    relay = tls_relay()
    s = tls_endpoint(relay, pki, "stomp", "agent", AGENT)
    ws = tls_endpoint(relay, pki, "ws", "ctrl", CTRL)
    m = tls_endpoint(relay, pki, "mqtt5", "agent2", AGENT2)
    big = bytes(range(256)) * 4096
    r = w.no_session(CTRL, AGENT, big)
    s.send_record(r)
    assert ws.recv_record(timeout=WAIT) == r
    r = w.no_session(AGENT2, CTRL, big)
    ws.send_record(r)
    assert m.recv_record(timeout=WAIT) == r


# ----------------------------------------------------------------- identity

@pytest.mark.parametrize("kind", KINDS)
def test_declared_id_must_be_the_certificates(tls_relay, pki, kind):
    """An ID declared in the MTP handshake that the certificate does not name is refused
    (mismatch, the certificate's ID logged); the certificate's own ID then connects."""
    relay = tls_relay()
    m = identity_refused(relay, pki, kind, "agent", OTHER, "mismatch")
    assert re.search(r'certificate_id="?%s"?' % re.escape(AGENT), m.group(0)), m.group(0)
    # The ctrl certificate cannot take the agent's ID either.
    identity_refused(relay, pki, kind, "ctrl", AGENT, "mismatch")
    a = tls_endpoint(relay, pki, kind, "agent", AGENT)
    exchange(a, plain_endpoint(relay, "stomp", "id"), "after refusals")


@pytest.mark.parametrize("kind", ["ws", "mqtt5", "mqtt4"])
def test_no_declared_id_binds_the_certificates(tls_relay, pki, kind):
    """WebSocket without eid, MQTT v5 without usp-endpoint-id (empty client id) and MQTT
    3.1.1 with a client id that is not an endpoint ID are bound to the certificate's ID:
    Records to it arrive, Records from it pass the from_id check."""
    relay = tls_relay()
    start = len(relay.log())
    a = tls_endpoint(relay, pki, kind, "agent", None, bound=AGENT, client_id="gw-17")
    wait_bound(relay, kind, AGENT, start)
    exchange(a, plain_endpoint(relay, "stomp", "noid"), "bound by cert")
    exchange(a, plain_endpoint(relay, "mqtt4", "noid"), "bound by cert")


def test_stomp_still_requires_endpoint_id(tls_relay, pki):
    """STOMP over TLS with a certificate but no endpoint-id header: ERROR, then close."""
    relay = tls_relay()
    c = relay.stomp_client(port=tls_port(relay, "stomp"), ssl_context=pki.client_context("agent"))
    c.connect(None, expect="ERROR")
    assert c.wait_closed().strip(b"\r\n") == b""
    assert not re.search(r"event=endpoint_bound [^\n]*listener=stomps ", relay.log())


def test_ws_invalid_declared_id_refused(tls_relay, pki):
    """A wss eid that is no endpoint ID at all, with a valid certificate: 403, reason
    invalid."""
    relay = tls_relay()
    identity_refused(relay, pki, "ws", "agent", "not-an-endpoint-id", "invalid")


@pytest.mark.parametrize("kind", KINDS)
def test_certificate_with_two_ids(tls_relay, pki, kind):
    """A certificate naming two endpoint IDs may declare either (two sessions at once),
    none (its first ID, where the MTP allows), but nothing else."""
    relay = tls_relay()
    peer = plain_endpoint(relay, "stomp", "two")
    a = tls_endpoint(relay, pki, kind, "two", TWO[0])
    b = tls_endpoint(relay, pki, kind, "two", TWO[1])
    exchange(a, peer, "first id")
    exchange(b, peer, "second id")
    identity_refused(relay, pki, kind, "two", AGENT, "mismatch")
    if kind != "stomp":
        a.close()
        c = tls_endpoint(relay, pki, kind, "two", None, bound=TWO[0])
        exchange(c, peer, "no declared id")


@pytest.mark.parametrize("kind", KINDS)
def test_cn_map(tls_relay, pki, kind):
    """A certificate without SAN IDs whose CN has a cn_map entry is that entry's endpoint:
    declared (or, where the MTP allows, not declared) it connects; another ID is refused
    (mismatch)."""
    relay = tls_relay(cn_map=({"cn": tlsfix.NOSAN_CN, "endpoint_id": CN42},))
    peer = plain_endpoint(relay, "uds", "cn")
    a = tls_endpoint(relay, pki, kind, "nosan", CN42)
    wait_bound(relay, kind, CN42)
    exchange(a, peer, "cn_map")
    identity_refused(relay, pki, kind, "nosan", OTHER, "mismatch")
    if kind != "stomp":
        a.close()
        b = tls_endpoint(relay, pki, kind, "nosan", None, bound=CN42)
        exchange(b, peer, "cn_map, no declared id")


@pytest.mark.parametrize("kind", KINDS)
def test_no_cert_id_without_cn_map(tls_relay, pki, kind):
    """The same certificate without a cn_map entry names no endpoint: refused
    (no_cert_id) whether the handshake declares an ID or not."""
    relay = tls_relay()
    identity_refused(relay, pki, kind, "nosan", CN42, "no_cert_id")
    if kind == "mqtt5":
        identity_refused(relay, pki, kind, "nosan", None, "no_cert_id")
    elif kind == "ws":
        identity_refused(relay, pki, kind, "nosan", None, "no_cert_id")
    relay.probe("nocn", kinds=PLAIN_KINDS).check()


@pytest.mark.parametrize("kind", KINDS)
def test_spoofed_from_id_dropped(tls_relay, pki, kind):
    """A TLS-bound endpoint sending a Record with another from_id: dropped (drop_spoofed
    logged for its connection), never delivered; its genuine Records still pass. For
    MQTT 3.1.1 without an ID in CONNECT the first Record does not name the endpoint
    either: the certificate already did."""
    relay = tls_relay()
    peer = plain_endpoint(relay, "stomp", "spoof")
    declare = None if kind == "mqtt4" else AGENT
    a = tls_endpoint(relay, pki, kind, "agent", declare, bound=AGENT)
    start = len(relay.log())
    a.send_record(w.no_session(peer.eid, SPOOF, b"forged"))
    relay.wait_log(r'event=record_dropped [^\n]*listener=%s [^\n]*eid="%s" reason=drop_spoofed'
                   r' to_id="%s" from_id="%s"' % (LISTENER[kind], re.escape(AGENT),
                                                  re.escape(peer.eid), re.escape(SPOOF)),
                   start=start)
    ok = w.no_session(peer.eid, AGENT, b"genuine")
    a.send_record(ok)
    assert peer.recv_record() == ok
    peer.expect_nothing(0.2)


# ----------------------------------------------------------------- certificate checks

@pytest.mark.parametrize("version", ["1.3", "1.2"])
@pytest.mark.parametrize("kind", KINDS)
def test_required_without_certificate(tls_relay, pki, kind, version):
    """client_certs "required": a client with no certificate fails the TLS handshake (TLS
    1.3: alert certificate_required after its Finished; 1.2: handshake_failure); the MTP
    never answers and tls_failed is logged."""
    relay = tls_relay()
    mv = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx = pki.client_context(None, max_version=mv)
    alert = ALERT_NO_CERT_13 if version == "1.3" else ALERT_NO_CERT_12
    tls_refused(relay, kind, ctx, alert=alert,
                log_error=None if kind == "ws" else "peer did not return a certificate")
    relay.probe("noc", kinds=PLAIN_KINDS).check()


@pytest.mark.parametrize("cert", ["rogue", "expired", "revoked"])
def test_bad_certificates_refused(tls_relay, pki, cert):
    """With a CRL configured: a certificate from an untrusted CA, an expired one and a
    revoked one fail the handshake on every TLS listener with the matching alert; the
    valid agent certificate still connects (the CRL is current and covers its CA)."""
    relay = tls_relay(crl=True)
    for kind in ("stomp", "mqtt5", "ws"):
        tls_refused(relay, kind, pki.client_context(cert), alert=ALERT[cert],
                    log_error=None if kind == "ws" else "certificate verify failed")
    peer = plain_endpoint(relay, "uds", "bad")
    for kind in KINDS:
        a = tls_endpoint(relay, pki, kind, "agent", AGENT)
        exchange(a, peer, "valid cert with crl " + kind)
        a.close()


def test_revoked_accepted_without_crl(tls_relay, pki):
    """Without `crl` the revoked certificate verifies (it is otherwise valid): what
    refused it above was the CRL."""
    relay = tls_relay()
    a = tls_endpoint(relay, pki, "stomp", "revoked", "os::00256D-revoked")
    exchange(a, plain_endpoint(relay, "stomp", "rev"), "no crl")


@pytest.mark.parametrize("kind", KINDS)
def test_optional_client_certs(tls_relay, pki, kind):
    """client_certs "optional": without a certificate the declared ID stands as on a plain
    listener; with one, the certificate decides (declaring another ID is refused); a
    certificate that does not verify fails the handshake."""
    relay = tls_relay(client_certs="optional")
    peer = plain_endpoint(relay, "stomp", "opt")
    anyone = "os::00256D-anyone" if kind == "mqtt4" else "self::anyone-" + kind
    a = tls_endpoint(relay, pki, kind, None, anyone)
    wait_bound(relay, kind, anyone)
    exchange(a, peer, "optional, no cert")
    b = tls_endpoint(relay, pki, kind, "agent", AGENT)
    exchange(b, peer, "optional, cert")
    identity_refused(relay, pki, kind, "agent", OTHER, "mismatch")
    if kind != "mqtt4":
        tls_refused(relay, kind, pki.client_context("rogue"), alert=ALERT["rogue"])


def test_optional_no_certificate_no_id_ws(tls_relay, pki):
    """Optional, no certificate and no eid: nothing names the endpoint: refused like on
    a plain listener (400), nothing bound."""
    relay = tls_relay(client_certs="optional")
    c = relay.ws_client("/usp", port=tls_port(relay, "ws"), ssl_context=pki.client_context(None))
    assert c.status in (400, 403), (c.status, c.reason)
    assert not re.search(r"event=endpoint_bound [^\n]*listener=wss ", relay.log())


def test_client_certs_none_ignores_certificates(tls_relay, pki):
    """client_certs "none": the relay asks for no certificate, so the declared ID stands
    even from a client holding one for another ID."""
    relay = tls_relay(client_certs="none")
    a = tls_endpoint(relay, pki, "stomp", "agent", "self::declared-none")
    exchange(a, plain_endpoint(relay, "uds", "none"), "client_certs none")
    assert a.tls.getpeercert() is not None


# ----------------------------------------------------------------- versions, SNI

@pytest.mark.parametrize("kind", ["stomp", "mqtt5", "ws"])
def test_min_version_13(tls_relay, pki, kind):
    """min_version "1.3": a TLS 1.2-only client fails (protocol_version alert, tls_failed
    logged); a TLS 1.3 client is served."""
    relay = tls_relay(min_version="1.3")
    ctx = pki.client_context("agent", max_version=ssl.TLSVersion.TLSv1_2)
    tls_refused(relay, kind, ctx, alert="protocol version",
                log_error=None if kind == "ws" else "unsupported protocol")
    a = tls_endpoint(relay, pki, kind, "agent", AGENT)
    assert a.tls.version() == "TLSv1.3"
    exchange(a, plain_endpoint(relay, "stomp", "v13"), "tls 1.3")


def _sans(client):
    return sorted(tlsfix.san_of(client.tls.getpeercert()))


DEFAULT_SANS = sorted([("IP Address", "127.0.0.1"), ("DNS", "localhost")])
ALT_SANS = [("DNS", tlsfix.ALT_NAME)]


@pytest.mark.parametrize("kind", ["stomp", "mqtt5", "ws"])
def test_sni(tls_relay, pki, kind):
    """SNI alt.test (and *.wild.test, one label) gets the alt certificate; localhost, an
    unknown name, a name two labels under the wildcard and no SNI (an IP address) get the
    default one. Client certificates are verified and bind identities after the switch."""
    relay = tls_relay(sni=(alt_sni(pki), alt_sni(pki, "*.wild.test")))
    peer = plain_endpoint(relay, "stomp", "sni")
    cases = [(tlsfix.ALT_NAME, True, ALT_SANS), ("ALT.Test", False, ALT_SANS),
             ("x.wild.test", False, ALT_SANS), (None, True, DEFAULT_SANS),
             ("localhost", True, DEFAULT_SANS), ("other.test", False, DEFAULT_SANS),
             ("a.b.wild.test", False, DEFAULT_SANS), ("wild.test", False, DEFAULT_SANS)]
    for name, check, sans in cases:
        a = tls_endpoint(relay, pki, kind, "agent", AGENT, server_hostname=name,
                         check_hostname=check)
        assert _sans(a) == sans, name
        exchange(a, peer, "sni %s" % name)
        a.close()
    # After the switch to the alt context the client certificate is still required and
    # checked, and the certificate's identity still rules.
    alt_ctx = pki.client_context(None)
    tls_refused(relay, kind, alt_ctx, server_hostname=tlsfix.ALT_NAME, alert=ALERT_NO_CERT_13)
    tls_refused(relay, kind, pki.client_context("rogue"), server_hostname=tlsfix.ALT_NAME,
                alert=ALERT["rogue"])
    start = len(relay.log())
    c = relay.stomp_client(port=tls_port(relay, "stomp"), ssl_context=pki.client_context("agent"),
                           server_hostname=tlsfix.ALT_NAME)
    c.connect(OTHER, expect="ERROR")
    relay.wait_log(r"event=identity_refused [^\n]*reason=mismatch", start=start)


def test_plain_listeners_unchanged_beside_tls(tls_relay, pki):
    """With TLS listeners configured, the plain listeners still speak plain TCP, and a
    plain client on a TLS port gets no MTP answer (the relay waits for a ClientHello and
    drops it)."""
    relay = tls_relay()
    relay.probe("plain", kinds=PLAIN_KINDS).check()
    c = w.StompClient(tls_port(relay, "stomp"))
    try:
        c.send_frame("STOMP", [("accept-version", "1.2"), ("endpoint-id", "self::plain-on-tls")],
                     escape=False)
        got = c.wait_closed(WAIT)
        assert not got.startswith(b"CONNECTED"), got[:100]
    finally:
        c.close()
    relay.wait_log(r"event=tls_failed [^\n]*listener=stomps ")


@pytest.mark.parametrize("notify", [False, True], ids=["dirty", "close_notify"])
@pytest.mark.parametrize("kind", KINDS)
def test_client_close_is_an_ordinary_eof(tls_relay, pki, kind, notify):
    """An identified TLS endpoint that goes away, with or without sending close_notify
    first (most clients, Python's ssl among them, just close the socket), is an ordinary
    peer close: conn_close reason=peer_closed, no tls_failed line."""
    relay = tls_relay()
    a = tls_endpoint(relay, pki, kind, "agent", AGENT)
    exchange(a, plain_endpoint(relay, "stomp", "eof"), "before close")
    me = a.sock.getsockname()[1]
    if notify:
        a.sock = a.sock.unwrap()
    a.close()
    m = relay.wait_log(r"event=conn_close [^\n]*listener=%s peer=127\.0\.0\.1:%d [^\n]*"
                       % (LISTENER[kind], me))
    assert "reason=peer_closed" in m.group(0), m.group(0)
    assert not re.search(r"event=tls_failed [^\n]*peer=127\.0\.0\.1:%d " % me, relay.log()), \
        [ln for ln in relay.log().splitlines() if ":%d " % me in ln]


@pytest.mark.parametrize("mqtt_listener", ["mqtt", "mqtts"])
def test_mqtt_over_wss_identity(tls_relay, pki, mqtt_listener):
    """MQTT over WebSocket (subprotocol "mqtt") on the TLS websocket listener, whose MQTT
    sessions run with the settings of MQTT_LISTENER (plain or TLS): the wss client
    certificate still decides the endpoint. The agent certificate connects as its own
    ID and exchanges Records; declaring another ID is refused with CONNACK 0x87."""
    relay = tls_relay(ws_mqtt=mqtt_listener)
    port = tls_port(relay, "ws")
    peer = plain_endpoint(relay, "stomp", "mows")

    def mqtt_over_wss(cert):
        ws = relay.ws_client("/usp", protocols=("mqtt",), port=port,
                             ssl_context=pki.client_context(cert))
        assert ws.status == 101 and ws.subprotocol == "mqtt", (ws.status, ws.headers)
        return relay.track(w.MqttClient(None, sock=w.WsStream(ws), level=5))

    m = mqtt_over_wss("agent")
    m.connect("", eid=AGENT)
    assert m.subscribe(m.topic) == [1]
    exchange(m, peer, "mqtt over wss")
    start = len(relay.log())
    bad = mqtt_over_wss("agent")
    bad.connect("", eid=OTHER, expect=0x87)
    relay.wait_log(r"event=identity_refused [^\n]*reason=mismatch", start=start)


# ----------------------------------------------------------------- third-party clients

@needs_mosquitto
@pytest.mark.parametrize("v5", [True, False], ids=["v5", "v311"])
def test_mosquitto_over_tls(tls_relay, pki, tmp_path, v5):
    """mosquitto_sub / mosquitto_pub with --cafile --cert --key: a Record from a plain
    STOMP controller reaches mosquitto_sub byte-identical; mosquitto_pub's answer reaches
    the controller; mosquitto_pub declaring another ID is refused (not authorised) and
    one without a certificate fails the handshake."""
    relay = tls_relay()
    ctrl = relay.stomp_endpoint("self::plain-mosq")
    sub = MosqSub(relay, AGENT, 1, v5=v5, topic=w.mqtt_topic(AGENT),
                  conn=mosq.tls_args(relay, pki, "agent"))
    r = w.no_session(AGENT, ctrl.eid, payload("to mosquitto"))
    ctrl.send_record(r)
    assert sub.recv()[-1] == r
    sub.wait()
    back = w.no_session(ctrl.eid, AGENT, payload("from mosquitto"))
    mosq_pub(relay, tmp_path, AGENT, w.mqtt_topic(ctrl.eid), back, v5=v5,
             conn=mosq.tls_args(relay, pki, "agent"))
    assert ctrl.recv_record() == back
    start = len(relay.log())
    p = mosq_pub(relay, tmp_path, OTHER, w.mqtt_topic(ctrl.eid), back, v5=v5,
                 conn=mosq.tls_args(relay, pki, "agent"), check=False)
    assert p.returncode != 0
    assert "not authori" in (p.stdout + p.stderr).lower(), (p.stdout, p.stderr)
    relay.wait_log(r"event=identity_refused [^\n]*listener=mqtts [^\n]*reason=mismatch",
                   start=start)
    p = mosq_pub(relay, tmp_path, AGENT, w.mqtt_topic(ctrl.eid), back, v5=v5,
                 conn=mosq.tls_args(relay, pki, None), check=False)
    assert p.returncode != 0
    relay.wait_log(r"event=tls_failed [^\n]*listener=mqtts ", start=start)
    ctrl.expect_nothing(0.2)


def test_paho_over_tls(tls_relay, pki):
    """paho-mqtt (MQTT v5) with tls_set as the agent2 endpoint: Records both ways with a
    plain UDS controller."""
    paho = pytest.importorskip("paho.mqtt.client")
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    relay = tls_relay()
    ctrl = relay.uds_endpoint("self::plain-paho")
    events, msgs = queue.Queue(), queue.Queue()
    c = paho.Client(client_id="", protocol=paho.MQTTv5)
    c.tls_set(ca_certs=pki.ca, certfile=pki.cert("agent2"), keyfile=pki.key("agent2"))
    c.on_connect = lambda cl, u, flags, rc, props=None: events.put(("connack", rc, props))
    c.on_subscribe = lambda cl, u, mid, *rest: events.put(("suback", mid, rest))
    c.on_message = lambda cl, u, msg: msgs.put(bytes(msg.payload))
    cp = Properties(PacketTypes.CONNECT)
    cp.UserProperty = ("usp-endpoint-id", AGENT2)
    c.connect("127.0.0.1", relay.port_of("mqtts"), keepalive=30, clean_start=True,
              properties=cp)
    c.loop_start()
    try:
        kind, rc, props = events.get(timeout=WAIT)
        assert kind == "connack" and rc == 0, (kind, rc)
        topic = dict(props.UserProperty)["subscribe-topic"]
        assert topic == w.mqtt_topic(AGENT2)
        c.subscribe(topic, qos=1)
        assert events.get(timeout=WAIT)[0] == "suback"
        r = w.no_session(AGENT2, ctrl.eid, payload("to paho"))
        ctrl.send_record(r)
        assert msgs.get(timeout=WAIT) == r
        back = w.no_session(ctrl.eid, AGENT2, payload("from paho"))
        pp = Properties(PacketTypes.PUBLISH)
        pp.ResponseTopic = topic
        pp.ContentType = "usp.msg"
        info = c.publish(w.mqtt_topic(ctrl.eid), back, qos=1, properties=pp)
        info.wait_for_publish(WAIT)
        assert ctrl.recv_record() == back
    finally:
        c.disconnect()
        c.loop_stop()


def test_websockets_over_tls(tls_relay, pki):
    """python3-websockets on wss with an SSLContext: without eid it is bound to its
    certificate's ID and exchanges Records with a plain MQTT controller; declaring
    another ID gets HTTP 403; without a certificate it never gets a response."""
    websockets = pytest.importorskip("websockets")
    relay = tls_relay()
    ctrl = relay.mqtt_endpoint("self::plain-pyws")
    base = "wss://127.0.0.1:%d/usp" % relay.port_of("wss")

    async def run():
        async with websockets.connect(base, ssl=pki.client_context("agent"),
                                      subprotocols=["v1.usp"], open_timeout=WAIT) as ws:
            assert ws.subprotocol == "v1.usp"
            r = w.no_session(AGENT, ctrl.eid, payload("to websockets"))
            await asyncio.to_thread(ctrl.send_record, r)
            assert await asyncio.wait_for(ws.recv(), WAIT) == r
            back = w.no_session(ctrl.eid, AGENT, payload("from websockets"))
            await ws.send(back)
            assert await asyncio.to_thread(ctrl.recv_record, WAIT) == back
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            async with websockets.connect(base + "?" + w.ws_query(OTHER),
                                          ssl=pki.client_context("agent"),
                                          subprotocols=["v1.usp"], open_timeout=WAIT):
                pass
        assert e.value.status_code == 403
        with pytest.raises((ssl.SSLError, ConnectionError, EOFError,
                            websockets.exceptions.InvalidHandshake, asyncio.TimeoutError)):
            async with websockets.connect(base + "?" + w.ws_query(AGENT),
                                          ssl=pki.client_context(None),
                                          subprotocols=["v1.usp"], open_timeout=WAIT):
                pass

    asyncio.run(run())
    relay.wait_log(r"event=identity_refused [^\n]*listener=wss [^\n]*reason=mismatch")
    relay.wait_log(r"event=tls_failed [^\n]*listener=wss ")


def test_stomp_py_over_tls(tls_relay, pki, monkeypatch):
    """stomp.py with set_ssl as the ctrl endpoint on stomps, exchanging Records with a
    wss agent (TLS on both sides)."""
    stomp = pytest.importorskip("stomp")
    import stomp.transport
    # With pyOpenSSL installed, stomp.py first fetches the server certificate over a
    # second connection without a client certificate (to check its expiry), which a
    # relay requiring certificates refuses, sometimes making stomp.py retry: the
    # verification against the CA below covers what that check is for.
    monkeypatch.setattr(stomp.transport, "check_ssl_certificate", lambda hp: None)
    relay = tls_relay()
    agent = tls_endpoint(relay, pki, "ws", "agent", AGENT)
    port = relay.port_of("stomps")
    conn = stomp.StompConnection12([("127.0.0.1", port)], auto_decode=False,
                                   heartbeats=(0, 0))
    conn.set_ssl(for_hosts=[("127.0.0.1", port)], key_file=pki.key("ctrl"),
                 cert_file=pki.cert("ctrl"), ca_certs=pki.ca)
    q = queue.Queue()

    class L(stomp.ConnectionListener):
        def on_connected(self, frame):
            q.put(("CONNECTED", frame))

        def on_message(self, frame):
            q.put(("MESSAGE", frame))

        def on_receipt(self, frame):
            q.put(("RECEIPT", frame))

        def on_error(self, frame):
            q.put(("ERROR", frame))

    def get(cmd):
        kind, frame = q.get(timeout=WAIT)
        assert kind == cmd, (kind, frame and (frame.headers, frame.body[:200]))
        return frame

    conn.set_listener("l", L())
    conn.connect(wait=True, headers={"endpoint-id": CTRL})
    try:
        dest = get("CONNECTED").headers["subscribe-dest"]
        assert dest == w.endpoint_dest(CTRL)
        conn.subscribe(destination=dest, id="1", ack="auto", headers={"receipt": "s1"})
        assert get("RECEIPT").headers["receipt-id"] == "s1"
        r = w.no_session(CTRL, AGENT, payload("to stomp.py"))
        agent.send_record(r)
        assert get("MESSAGE").body == r
        back = w.no_session(AGENT, CTRL, payload("from stomp.py"))
        conn.send(destination=w.endpoint_dest(AGENT), body=back,
                  content_type=w.USP_CONTENT_TYPE, headers={"reply-to-dest": dest})
        assert agent.recv_record() == back
    finally:
        if conn.is_connected():
            conn.disconnect()


@pytest.mark.parametrize("kind", ["stomp", "mqtt5", "ws"])
def test_sighup_reloads_certificate(tls_relay, pki, tmp_path, kind):
    """SIGHUP re-reads the certificate files: a connection opened before keeps working,
    a new one is served the new certificate; a file that no longer loads fails the
    configuration check (reload_refused), the material in force stays and the relay
    serves on."""
    import signal
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    shutil.copy(pki.cert("server"), cert)
    shutil.copy(pki.key("server"), key)
    relay = tls_relay(certificate=str(cert), key=str(key))
    peer = plain_endpoint(relay, "stomp", "hup")
    before = tls_endpoint(relay, pki, kind, "agent", AGENT, check_hostname=False)
    assert _sans(before) == DEFAULT_SANS
    # Swap in another certificate and key (the alt one), then reload.
    shutil.copy(pki.cert("alt"), cert)
    shutil.copy(pki.key("alt"), key)
    relay.send_signal(signal.SIGHUP)
    relay.wait_log(r"event=tls_reloaded listener=%s " % {"stomp": "stomps", "mqtt5": "mqtts",
                                                         "ws": "wss"}[kind])
    exchange(before, peer, "old connection after reload")
    before.close()
    after = tls_endpoint(relay, pki, kind, "agent", AGENT, check_hostname=False)
    assert _sans(after) == ALT_SANS
    exchange(after, peer, "new connection after reload")
    after.close()
    # A broken file: the whole reload is refused, the alt material stays.
    cert.write_text("not a certificate\n")
    relay.send_signal(signal.SIGHUP)
    relay.wait_log(r"event=reload_refused config=[^\n]* action=keep_old")
    again = tls_endpoint(relay, pki, kind, "agent", AGENT, check_hostname=False)
    assert _sans(again) == ALT_SANS


@pytest.mark.parametrize("kind", ["stomp", "mqtt5", "ws"])
def test_sighup_reloads_crl(tls_relay, pki, tmp_path, kind):
    """SIGHUP re-reads the CRL: a certificate revoked since start-up keeps the connection
    it has, and its next handshake is refused; a good certificate still connects."""
    import signal
    crl = tmp_path / "crl.pem"
    shutil.copy(pki.crl_empty, crl)
    relay = tls_relay(crl=str(crl))
    peer = plain_endpoint(relay, "stomp", "crl")
    revoked_id = pki.eids["revoked"][0]
    before = tls_endpoint(relay, pki, kind, "revoked", revoked_id)
    exchange(before, peer, "not yet revoked")
    shutil.copy(pki.crl, crl)
    start = len(relay.log())
    relay.send_signal(signal.SIGHUP)
    relay.wait_log(r"event=tls_reloaded listener=%s " % LISTENER[kind], start=start)
    exchange(before, peer, "revoked after the handshake")
    tls_refused(relay, kind, pki.client_context("revoked"), eid=revoked_id,
                alert=ALERT["revoked"])
    good = tls_endpoint(relay, pki, kind, "agent", AGENT)
    exchange(good, peer, "good after crl reload")


@pytest.mark.parametrize("kind", ["stomp", "mqtt5", "ws"])
def test_sighup_applies_new_tls_settings(tls_relay, pki, kind):
    """A reload that turns client_certs from "required" to "optional" and maps a CN to
    another endpoint ID: a client without a certificate is then let in under its
    declared ID, the CN binds the new ID only; connections from before stay."""
    import signal
    old_id, new_id = "os::00256D-cn-before", CN42
    relay = tls_relay(cn_map=({"cn": tlsfix.NOSAN_CN, "endpoint_id": old_id},))
    peer = plain_endpoint(relay, "stomp", "set")
    before = tls_endpoint(relay, pki, kind, "nosan", old_id)
    tls_refused(relay, kind, pki.client_context(None), alert=ALERT_NO_CERT_13)
    cfg = relay.config_path.read_text()
    assert cfg.count('"required"') == 3 and cfg.count(old_id) == 3, cfg
    relay.config_path.write_text(cfg.replace('"required"', '"optional"')
                                    .replace(old_id, new_id))
    start = len(relay.log())
    relay.send_signal(signal.SIGHUP)
    relay.wait_log(r"event=tls_reloaded listener=%s " % LISTENER[kind], start=start)
    exchange(before, peer, "kept over the reload")
    anon = tls_endpoint(relay, pki, kind, None, "os::00256D-anonymous")
    exchange(anon, peer, "optional after reload")
    identity_refused(relay, pki, kind, "nosan", old_id, "mismatch")
    mapped = tls_endpoint(relay, pki, kind, "nosan", new_id)
    exchange(mapped, peer, "new cn_map entry")


def test_reloads_free_what_they_replace(tls_relay, pki):
    """Hundreds of SIGHUPs (TLS material on three listeners, policy, the configuration)
    while connections made before them stay open: the material those connections use
    lives until they close, everything else replaced is freed, so memory stays flat
    (checked on the plain build; under ASan the leak check at exit and the use of the
    old material after the reloads stand in)."""
    import signal
    import time
    relay = tls_relay(crl=True)
    peer = plain_endpoint(relay, "stomp", "mem")
    kept = [tls_endpoint(relay, pki, "stomp", "agent", AGENT),
            tls_endpoint(relay, pki, "ws", "agent2", AGENT2)]

    def reload_times(n):
        start = len(relay.log())
        for _ in range(n):
            relay.send_signal(signal.SIGHUP)
            time.sleep(0.005)
        relay.wait_log(r"event=tls_reloaded listener=wss ", start=start)
        # Signals coalesce: wait until the relay has taken up the last one.
        count = -1
        while count != relay.log()[start:].count("event=policy_reloaded"):
            count = relay.log()[start:].count("event=policy_reloaded")
            time.sleep(0.3)
        return count

    reload_times(30)  # allocator warm-up
    before = relay.rss_kib()
    done = reload_times(300)
    grown = relay.rss_kib() - before
    assert done >= 30, done
    for c in kept:
        exchange(c, peer, "made before %d reloads" % done)
        c.close()
    fresh = tls_endpoint(relay, pki, "mqtt5", "agent", AGENT)
    exchange(fresh, peer, "after the reloads")
    if not relay.sanitized():
        assert grown < 2048, "RSS grew %d KiB over %d reloads" % (grown, done)
