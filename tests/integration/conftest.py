"""conftest.py — fixtures that run the real usprelayd for the integration tests.

Everything is found through $USPRELAY_BUILD (default: <repo>/build): the daemon is
$USPRELAY_BUILD/usprelayd, helper programs sit beside it (``tool_path("usp-testclient")``).

Fixtures (stable names, used by every tests/integration/test_*.py):

``start_relay``  factory: ``start_relay(**overrides) -> Relay``; starts a daemon with a
                 fresh config (see ``write_config``), waits until it serves, and stops it at
                 teardown. Call it several times for several relays.
``relay``        ``start_relay()`` with the defaults.
``make_config``  factory: ``make_config(**overrides) -> (path, info)`` writes a config
                 without starting anything (for ``usprelayd -t``).
``usprelayd``    path of the daemon binary; ``build_dir``: $USPRELAY_BUILD as a Path.

Client helpers on Relay (closed at teardown): stomp_client/stomp_endpoint,
uds_client/uds_endpoint, mqtt_client/mqtt_endpoint (raw uspwire.MqttClient, v5 or 3.1.1),
ws_client/ws_endpoint (raw uspwire.WsClient), and probe(tag, kinds) -> Probe: endpoints
whose check() shows the relay still serves others after a test abused it.
TLS: the client helpers take ssl_context= / server_hostname= (uspwire.tcp_connect) and
port= for a TLS listener added with extra_listeners; Relay.port_of(name) gives the port
of any listener by name.

Default config: relay.endpoint_id "self::usprelay", workers 2, shutdown_timeout 2 s, log
level info; four listeners on fresh resources:
  "stomp"     STOMP on 127.0.0.1:<free port>                     -> Relay.stomp_port
  "uds"       UDS, no peer_endpoint_id (answers self::usprelay)   -> Relay.uds_path
  "uds-ctrl"  UDS, peer_endpoint_id = "self::usp-controller"      -> Relay.uds_ctrl_path
  "mqtt"      MQTT 3.1.1/5.0 on 127.0.0.1:<free port>, defaults   -> Relay.mqtt_port
  "ws"        WebSocket on 127.0.0.1:<free port>                  -> Relay.ws_port
              paths [ "/usp" ]; controllers ( { path "/usp/ctrl"; endpoint_id
              self::usp-controller } ); mqtt_listener "mqtt"; the rest server defaults.
Overrides (dicts merged key by key; a value None deletes the key; a nested dict is a
group, e.g. stomp={"limits": {"max_record_size": 1024}}):
  relay={...} log={...} limits={...} stomp={...} uds={...} uds_ctrl={...} mqtt={...} ws={...}
  policy={...}                     the top-level policy group, written as given
  extra_listeners=[{...}, ...]     appended as given (name/type/... all yours)
  listeners=[...]                  replaces the four defaults entirely
  args=[...]                       extra command-line arguments (e.g. ["-d"])
  wait_ready=False                 return at once (for daemons expected to fail)

Config values: a dict is a group, a list of scalars an array [ ... ], any other list or a
tuple a list ( ... ) (so controllers=({...},) and paths=["/usp"] come out as libconfig
wants them).

At teardown the relay gets SIGTERM and must exit 0 within 10 s (else it is killed and the
test fails), and the test fails if its log shows a sanitizer report ("ERROR:
AddressSanitizer", "runtime error:", "LeakSanitizer") or if it died on its own. The log
is printed at teardown (pytest shows it for failing tests).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import testclient
import uspwire

REPO = Path(__file__).resolve().parents[2]
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
STOP_TIMEOUT = 10.0
READY_TIMEOUT = 15.0

CTRL_EID = "self::usp-controller"
RELAY_EID = "self::usprelay"
WS_CTRL_PATH = "/usp/ctrl"


def build_path():
    return Path(os.environ.get("USPRELAY_BUILD", REPO / "build")).resolve()


def tool_path(name):
    """A program built beside the daemon, e.g. tool_path("usp-testclient")."""
    return build_path() / name


def free_port():
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------- config writing

def _cfg_value(v, indent):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%dL" % v if not -2**31 <= v < 2**31 else str(v)
    if isinstance(v, float):
        r = repr(v)
        return r if ("." in r or "e" in r) else r + ".0"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return _cfg_group(v, indent)
    if isinstance(v, list) and all(isinstance(x, (bool, int, float, str)) for x in v):
        return "[ " + ", ".join(_cfg_value(x, indent + 1) for x in v) + " ]"
    if isinstance(v, (list, tuple)):
        pad = "  " * (indent + 1)
        items = (",\n" + pad).join(_cfg_value(x, indent + 1) for x in v)
        return "(\n" + pad + items + "\n" + "  " * indent + ")"
    raise TypeError("cannot write %r to a config" % (v,))


def _cfg_group(d, indent):
    pad = "  " * (indent + 1)
    body = "".join("%s%s = %s;\n" % (pad, k, _cfg_value(v, indent + 1))
                   for k, v in d.items() if v is not None)
    return "{\n" + body + "  " * indent + "}"


def render_config(sections):
    """libconfig text for SECTIONS: {name: dict | list}."""
    return "".join("%s = %s;\n" % (k, _cfg_value(v, 0)) for k, v in sections.items()
                   if v is not None)


def _merge(base, over):
    out = dict(base)
    for k, v in (over or {}).items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


class ConfigInfo:
    """Where a written config puts things."""

    def __init__(self, stomp_port, uds_path, uds_ctrl_path, sections, mqtt_port=None,
                 ws_port=None):
        self.stomp_port = stomp_port
        self.uds_path = uds_path
        self.uds_ctrl_path = uds_ctrl_path
        self.mqtt_port = mqtt_port
        self.ws_port = ws_port
        self.sections = sections


def default_ws_listener(port):
    return {"name": "ws", "type": "websocket", "address": "127.0.0.1", "port": port,
            "paths": ["/usp"],
            "controllers": ({"path": WS_CTRL_PATH, "endpoint_id": CTRL_EID},),
            "mqtt_listener": "mqtt"}


def write_config(path, sock_dir, *, tag="", relay=None, log=None, limits=None, stomp=None,
                 uds=None, uds_ctrl=None, mqtt=None, ws=None, extra_listeners=(),
                 listeners=None, policy=None, cache=None):
    """Write a config to PATH (sockets in SOCK_DIR, named with TAG) and return a
    ConfigInfo."""
    port = free_port()
    mqtt_port = free_port()
    while mqtt_port == port:
        mqtt_port = free_port()
    ws_port = free_port()
    while ws_port in (port, mqtt_port):
        ws_port = free_port()
    uds_path = os.path.join(str(sock_dir), "r%s.sock" % tag)
    ctrl_path = os.path.join(str(sock_dir), "c%s.sock" % tag)
    sections = {
        "relay": _merge({"endpoint_id": RELAY_EID, "workers": 2, "shutdown_timeout": 2.0},
                        relay),
        "log": _merge({"level": "info"}, log),
        "limits": _merge({}, limits) if limits else None,
        "policy": policy,
        # Most suites test what an MTP does with a Record it cannot deliver: without the
        # cache. CACHE (a dict, {} for the defaults) turns it on.
        "cache": {"enabled": False} if cache is None else cache,
    }
    if listeners is None:
        listeners = [
            _merge({"name": "stomp", "type": "stomp", "address": "127.0.0.1", "port": port},
                   stomp),
            _merge({"name": "uds", "type": "uds", "path": uds_path, "mode": "0600"}, uds),
            _merge({"name": "uds-ctrl", "type": "uds", "path": ctrl_path, "mode": "0600",
                    "peer_endpoint_id": CTRL_EID}, uds_ctrl),
            _merge({"name": "mqtt", "type": "mqtt", "address": "127.0.0.1", "port": mqtt_port},
                   mqtt),
        ]
        listeners.append(_merge(default_ws_listener(ws_port), ws))
    sections["listeners"] = list(listeners) + list(extra_listeners)
    Path(path).write_text(render_config(sections))
    info = ConfigInfo(port, uds_path, ctrl_path, sections, mqtt_port)
    # What the listeners really use after overrides.
    for lst in sections["listeners"]:
        if lst.get("name") == "stomp" and "port" in lst:
            info.stomp_port = lst["port"]
        elif lst.get("name") == "uds" and "path" in lst:
            info.uds_path = lst["path"]
        elif lst.get("name") == "uds-ctrl" and "path" in lst:
            info.uds_ctrl_path = lst["path"]
        elif lst.get("name") == "mqtt" and "port" in lst:
            info.mqtt_port = lst["port"]
        elif lst.get("name") == "ws" and "port" in lst:
            info.ws_port = lst["port"]
    if not any(lst.get("name") == "mqtt" for lst in sections["listeners"]):
        info.mqtt_port = None
    return info


# ----------------------------------------------------------------- the running relay

class Relay:
    """A running usprelayd. Attributes: proc, stomp_port, uds_path, uds_ctrl_path,
    mqtt_port, ws_port, config_path, log_path, info (ConfigInfo)."""

    def __init__(self, exe, config_path, log_path, info, args, cwd):
        self.config_path = config_path
        self.log_path = log_path
        self.info = info
        self.stomp_port = info.stomp_port
        self.uds_path = info.uds_path
        self.uds_ctrl_path = info.uds_ctrl_path
        self.mqtt_port = info.mqtt_port
        self.ws_port = info.ws_port
        self._clients = []
        self._stopped = False     # the test stopped/killed it on purpose
        self._signalled = False   # a stop signal has been sent
        self._logf = open(log_path, "wb")
        self.proc = subprocess.Popen([str(exe), "-c", str(config_path)] + list(args),
                                     stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(cwd))

    # -- log
    def log(self):
        """Everything the daemon wrote so far (stdout + stderr)."""
        try:
            return Path(self.log_path).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, regex, timeout=5.0, start=0):
        """Wait until REGEX matches the log (from character START on); return the match.
        Fails with the log tail on timeout or if the daemon exits first."""
        pat = re.compile(regex)
        end = time.monotonic() + timeout
        while True:
            text = self.log()
            m = pat.search(text, start)
            if m:
                return m
            if time.monotonic() > end:
                raise AssertionError("log never matched %r within %.1fs; log tail:\n%s"
                                     % (regex, timeout, text[-3000:]))
            if self.proc.poll() is not None:
                text = self.log()
                m = pat.search(text, start)
                if m:
                    return m
                raise AssertionError("relay exited (rc=%s) before log matched %r; log:\n%s"
                                     % (self.proc.returncode, regex, text[-3000:]))
            time.sleep(0.02)

    def count_log(self, regex):
        return len(re.findall(regex, self.log()))

    # -- lifecycle
    def wait_ready(self, timeout=READY_TIMEOUT):
        """Until the TCP (STOMP, MQTT) ports accept and the UDS socket files exist. With
        a log level that shows connection closes, also until the relay has closed the
        probe connections, so that none of them still holds a connection slot."""
        end = time.monotonic() + timeout
        need = self.info.sections["listeners"]
        probes = 0
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("relay exited rc=%s during startup; log:\n%s"
                                     % (self.proc.returncode, self.log()))
            ok = True
            for lst in need:
                if lst.get("type") == "uds":
                    p = lst["path"]
                    p = p if os.path.isabs(p) else os.path.join(os.path.dirname(
                        str(self.config_path)), p)
                    ok = ok and os.path.exists(p)
                elif lst.get("type") in ("stomp", "mqtt") and ok:
                    try:
                        socket.create_connection((lst["address"], lst["port"]), 0.5).close()
                        probes += 1
                    except OSError:
                        ok = False
                elif lst.get("type") == "websocket" and ok:
                    # Not counted among the probes whose close is awaited: a connection
                    # closed before its HTTP request may never become a logged session.
                    try:
                        socket.create_connection((lst["address"], lst["port"]), 0.5).close()
                    except OSError:
                        ok = False
            if ok:
                level = (self.info.sections.get("log") or {}).get("level", "info")
                if probes and level in ("info", "debug"):
                    self._wait_probes_closed(probes, end)
                return
            if time.monotonic() > end:
                raise AssertionError("relay not ready within %.0fs; log:\n%s"
                                     % (timeout, self.log()))
            time.sleep(0.02)

    def _wait_probes_closed(self, probes, end):
        pat = re.compile(r"event=(?:conn_close|conn_rejected) ")
        while len(pat.findall(self.log())) < probes:
            if self.proc.poll() is not None:
                raise AssertionError("relay exited rc=%s during startup; log:\n%s"
                                     % (self.proc.returncode, self.log()))
            if time.monotonic() > end:
                raise AssertionError("readiness probes never closed; log:\n%s" % self.log())
            time.sleep(0.01)

    def send_signal(self, sig):
        """Send SIG. A stop signal makes stop() and the teardown only wait (a second
        SIGTERM during the final cleanup may meet the default action once the handler is
        gone); other signals (SIGHUP) leave the stop to them."""
        if sig in (signal.SIGTERM, signal.SIGINT):
            self._signalled = True
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Send SIG (default SIGTERM) unless send_signal() already sent one, and return the
        exit code; asserts it exits in time."""
        self._stopped = True
        if self.proc.poll() is None and not self._signalled:
            self._signalled = True
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("relay did not exit within %.0fs of signal %s; log:\n%s"
                                 % (timeout, sig, self.log()[-3000:]))

    def sanitized(self):
        """Is this relay built with AddressSanitizer (whose quarantine makes RSS figures
        meaningless)?"""
        with open("/proc/%d/maps" % self.proc.pid) as f:
            return "libasan" in f.read()

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for the relay")

    def stopped_counters(self):
        """Stop the relay (SIGTERM) and return the counters of its "stopped" line."""
        assert self.stop() == 0, self.log()[-2000:]
        m = re.search(r"event=stopped ([^\n]*)", self.log())
        assert m, "no stopped line; log tail:\n" + self.log()[-2000:]
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}

    def kill(self):
        """SIGKILL (leaves socket files behind, like a crash)."""
        self._stopped = True
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait()

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """For a daemon expected to exit by itself: wait and return its exit code."""
        self._stopped = True
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("relay still running after %.0fs; log:\n%s"
                                 % (timeout, self.log()[-3000:]))

    # -- clients (closed automatically at teardown)
    def track(self, client):
        self._clients.append(client)
        return client

    def port_of(self, name):
        """The port of the listener called NAME (e.g. a TLS one from extra_listeners)."""
        for lst in self.info.sections["listeners"]:
            if lst.get("name") == name:
                return lst["port"]
        raise AssertionError("this relay has no listener %r" % name)

    def stomp_client(self, timeout=5.0, port=None, ssl_context=None, server_hostname=None):
        """A raw StompClient connected (TCP, or TLS with SSL_CONTEXT) to the STOMP
        listener (or PORT)."""
        return self.track(uspwire.StompClient(port or self.stomp_port, timeout=timeout,
                                              ssl_context=ssl_context,
                                              server_hostname=server_hostname))

    def stomp_endpoint(self, eid, subscribe=True, port=None, ssl_context=None,
                       server_hostname=None, **connect_kw):
        """A StompClient that has CONNECTed as EID and (by default) SUBSCRIBEd to its
        subscribe-dest, the SUBSCRIBE confirmed by a RECEIPT."""
        c = self.stomp_client(port=port, ssl_context=ssl_context,
                              server_hostname=server_hostname)
        c.connect(eid, **connect_kw)
        if subscribe:
            c.subscribe()
        return c

    def uds_client(self, path=None, timeout=5.0):
        """A raw UdsClient connected to PATH (default: the "uds" listener)."""
        return self.track(uspwire.UdsClient(path or self.uds_path, timeout=timeout))

    def uds_endpoint(self, eid, path=None, expect_peer=None):
        """A UdsClient that completed the handshake as EID; the relay's answer is in
        .peer_eid (checked against EXPECT_PEER when given)."""
        c = self.uds_client(path)
        peer = c.handshake(eid)
        if expect_peer is not None:
            assert peer == expect_peer
        return c

    def mqtt_client(self, timeout=5.0, port=None, level=5, ssl_context=None,
                    server_hostname=None):
        """A raw MqttClient connected (TCP, or TLS with SSL_CONTEXT) to the MQTT
        listener (or PORT)."""
        return self.track(uspwire.MqttClient(port or self.mqtt_port, timeout=timeout,
                                             level=level, ssl_context=ssl_context,
                                             server_hostname=server_hostname))

    def mqtt_endpoint(self, eid, *, level=5, client_id=None, subscribe=True, qos=1,
                      port=None, ssl_context=None, server_hostname=None, **connect_kw):
        """A MqttClient CONNECTed as EID (v5: user property usp-endpoint-id, client id
        empty unless CLIENT_ID; 3.1.1: client id = CLIENT_ID or EID) and, by default,
        SUBSCRIBEd with QOS to its topic (v5: CONNACK subscribe-topic; 3.1.1: the
        default-template topic + "/#", as obuspa does), the SUBACK checked."""
        c = self.mqtt_client(port=port, level=level, ssl_context=ssl_context,
                             server_hostname=server_hostname)
        if level == 5:
            c.connect(client_id or "", eid=eid, **connect_kw)
        else:
            c.connect(client_id or eid, **connect_kw)
            c.eid = eid
            c.topic = uspwire.mqtt_topic(eid)
        if subscribe:
            f = c.topic if level == 5 else c.topic + "/#"
            assert c.subscribe(f, qos=qos) == [qos]
        return c

    def _need_ws(self):
        if self.ws_port is None:
            raise AssertionError("this relay has no websocket listener \"ws\"")

    def ws_client(self, path="/usp", eid=None, protocols=("v1.usp",), ext=False,
                  extra_headers=(), query=None, port=None, **kw):
        """A raw WsClient on the "ws" listener that has sent its opening handshake for
        PATH (query "eid=<EID pct-encoded>" unless QUERY); whatever the answer, its status
        is in .status (see uspwire.WsClient for the other keywords)."""
        if port is None:
            self._need_ws()
        return self.track(uspwire.WsClient(port or self.ws_port, path, eid=eid, query=query,
                                           protocols=protocols, ext=ext,
                                           extra_headers=extra_headers, **kw))

    def ws_endpoint(self, eid, path="/usp", ext=False, **kw):
        """A WsClient upgraded as EID on PATH: 101 with Sec-WebSocket-Protocol v1.usp."""
        c = self.ws_client(path, eid=eid, ext=ext, **kw)
        assert c.status == 101, "upgrade of %s on %s refused: %d %s %r %r" % (
            eid, path, c.status, c.reason, c.headers, c.body[:300])
        assert c.subprotocol == "v1.usp", c.headers
        return c

    def endpoint(self, kind, eid):
        """An identified endpoint EID of KIND: "ws", "stomp", "mqtt5", "mqtt4" or "uds"."""
        if kind == "ws":
            return self.ws_endpoint(eid)
        if kind == "stomp":
            return self.stomp_endpoint(eid)
        if kind in ("mqtt5", "mqtt4"):
            return self.mqtt_endpoint(eid, level=5 if kind == "mqtt5" else 4)
        assert kind == "uds", kind
        return self.uds_endpoint(eid)

    def probe(self, tag="probe", kinds=("stomp", "uds")):
        """A Probe (see there) on this relay: endpoints of KINDS, connected now."""
        return Probe(self, tag, kinds)

    def close_clients(self):
        for c in self._clients:
            c.close()
        self._clients.clear()

    def _teardown(self):
        """Stop (if still running) and collect problems: a list of messages."""
        problems = []
        self.close_clients()
        if self.proc.poll() is None:
            if not self._signalled:
                self._signalled = True
                self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(STOP_TIMEOUT)
                if rc != 0:
                    problems.append("relay exited %s on SIGTERM at teardown" % rc)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("relay did not exit within %.0fs of SIGTERM" % STOP_TIMEOUT)
        elif not self._stopped and self.proc.returncode != 0:
            problems.append("relay died on its own (rc=%s)" % self.proc.returncode)
        self._logf.close()
        text = self.log()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                problems.append("sanitizer report in relay log (%r)" % marker)
        return problems, text


class Probe:
    """Endpoints connected before some abuse, to prove the relay still serves others.
    KINDS picks them: "stomp" (.s, self::TAG-s), "uds" (.u, self::TAG-u), "mqtt5" (.m5,
    self::TAG-m5), "mqtt4" (.m4, os::TAG-m4, MQTT 3.1.1), "ws" (.w, self::TAG-w, on
    /usp). check() passes a Record from each to the next, the last to the first, then
    does the same between freshly connected endpoints of the same kinds (closed
    afterwards): old and new sessions are served."""

    _ATTR = {"stomp": "s", "uds": "u", "mqtt5": "m5", "mqtt4": "m4", "ws": "w"}

    def __init__(self, relay, tag="probe", kinds=("stomp", "uds")):
        self.relay = relay
        self.n = 0
        self.tag = tag
        self.kinds = tuple(kinds)
        self.endpoints = [self._connect(k, "") for k in self.kinds]
        for k, e in zip(self.kinds, self.endpoints):
            setattr(self, self._ATTR[k], e)

    def _connect(self, kind, suffix):
        name = "%s-%s%s" % (self.tag, self._ATTR[kind], suffix)
        if kind == "stomp":
            return self.relay.stomp_endpoint("self::" + name)
        if kind == "uds":
            return self.relay.uds_endpoint("self::" + name)
        if kind == "mqtt5":
            return self.relay.mqtt_endpoint("self::" + name)
        if kind == "ws":
            return self.relay.ws_endpoint("self::" + name)
        return self.relay.mqtt_endpoint("os::" + name, level=4)

    def _ring(self, endpoints, what):
        for a, b in zip(endpoints, endpoints[1:] + endpoints[:1]):
            r = uspwire.no_session(b.eid, a.eid, b"%s %d" % (what, self.n))
            a.send_record(r)
            assert b.recv_record() == r

    def check(self):
        self.n += 1
        self._ring(self.endpoints, b"probe")
        fresh = [self._connect(k, "-f%d" % self.n) for k in self.kinds]
        self._ring(fresh, b"fresh")
        for e in fresh:
            e.close()


@pytest.fixture(scope="session")
def build_dir():
    return build_path()


@pytest.fixture(scope="session")
def usprelayd(build_dir):
    exe = build_dir / "usprelayd"
    if not exe.exists():
        pytest.fail("%s not found: build it (make BUILD=...) and set USPRELAY_BUILD" % exe)
    return exe


@pytest.fixture
def sock_dir():
    """A short directory for UNIX sockets (sun_path is 108 bytes), removed afterwards."""
    d = tempfile.mkdtemp(prefix="usp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_config(tmp_path, sock_dir):
    n = [0]

    def make(**overrides):
        n[0] += 1
        path = tmp_path / ("relay%d.conf" % n[0])
        info = write_config(path, sock_dir, tag="m%d" % n[0], **overrides)
        return path, info

    return make


@pytest.fixture
def start_relay(usprelayd, tmp_path, sock_dir):
    relays = []
    n = [0]

    def start(*, args=(), wait_ready=True, **overrides):
        n[0] += 1
        conf = tmp_path / ("relay%d.conf" % n[0])
        info = write_config(conf, sock_dir, tag=str(n[0]), **overrides)
        r = Relay(usprelayd, conf, tmp_path / ("relay%d.log" % n[0]), info, args, tmp_path)
        relays.append(r)
        if wait_ready:
            r.wait_ready()
        return r

    yield start

    failures = []
    for i, r in enumerate(relays, 1):
        problems, text = r._teardown()
        print("----- relay%d log (%s) -----\n%s" % (i, r.config_path, text))
        failures += ["relay%d: %s" % (i, p) for p in problems]
    if failures:
        pytest.fail("; ".join(failures), pytrace=False)


@pytest.fixture
def relay(start_relay):
    return start_relay()


@pytest.fixture
def client(build_dir, tmp_path):
    """Factory: client(*args, wait_stdin=False) -> a started Client; leftovers are killed."""
    exe = build_dir / "usp-testclient"
    if not exe.exists():
        pytest.fail("%s not found: build it (make BUILD=...)" % exe)
    started = []

    def start(*args, wait_stdin=False):
        c = testclient.Client(exe, args, tmp_path / ("client%d.err" % len(started)), wait_stdin)
        started.append(c)
        return c

    yield start
    reports = []
    for c in started:
        c.kill()
        err = c.stderr()
        if any(m in err for m in testclient.SANITIZER_MARKERS):
            reports.append(c.describe())
    if reports:
        pytest.fail("sanitizer report from usp-testclient:\n" + "\n".join(reports),
                    pytrace=False)
