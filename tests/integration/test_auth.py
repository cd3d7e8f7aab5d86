"""Credentials from a password file (password_file on stomp and mqtt listeners) and the
failed-login limiter (docs/security.md, "Credentials"): usprelayd --hash-password, STOMP
and MQTT 5.0 / 3.1.1 logins against the file (good, wrong password, unknown user, no
password), MQTT over WebSocket with the mqtt listener's file, the block after repeated
failures from one address (refused even with the right password, other addresses
unaffected, the failure counter in the log), the limiter on the login/passcode pair too,
and the configuration errors `usprelayd -t` reports."""

import re
import socket
import subprocess

import pytest

import uspwire as w

FAILURES = 5          # AUTH_LIMIT_FAILURES: tolerated; one more blocks
ITER = 1000           # fast hashes for the tests (the default is tested once)
A = "self::auth-a"
B = "self::auth-b"


def hash_password(exe, password, *args):
    p = subprocess.run([str(exe), "--hash-password"] + list(args), input=password + "\n",
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    out = p.stdout.strip()
    assert "\n" not in out
    return out


@pytest.fixture
def pwfile(usprelayd, tmp_path):
    """A password file: agent1/s3cret (default iterations), agent2/p:w\\x, mq/m-pass."""
    path = tmp_path / "passwd"
    path.write_text("# usprelay users\n\n"
                    "agent1:%s\n" % hash_password(usprelayd, "s3cret") +
                    "agent2:%s\n" % hash_password(usprelayd, "p:w\\x", "--iterations", str(ITER)) +
                    "mq:%s\n" % hash_password(usprelayd, "m-pass", "--iterations", str(ITER)))
    return path


def stomp_refused(relay, login, passcode, eid=B):
    c = relay.stomp_client()
    f = c.connect(eid, login=login, passcode=passcode, expect="ERROR")
    assert f["message"] == "authentication failed"
    c.wait_closed()


def mqtt_refused(relay, level, code, **kw):
    c = relay.mqtt_client(level=level)
    if level == 5:
        p = c.connect("", eid="self::auth-bad", expect=code, **kw)
    else:
        p = c.connect("os::auth-bad", expect=code, **kw)
    c.expect_close()
    return p


# ----------------------------------------------------------------- the tool

def test_hash_password_tool(usprelayd):
    h = hash_password(usprelayd, "secret")
    m = re.fullmatch(r"\$pbkdf2-sha256\$(\d+)\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})", h)
    assert m, h
    assert int(m.group(1)) >= 10000          # the default, whatever it is tuned to
    assert hash_password(usprelayd, "secret") != h   # a fresh salt each time
    h = hash_password(usprelayd, "secret", "--iterations", "1000")
    assert h.startswith("$pbkdf2-sha256$1000$")
    # no trailing newline is fine; an empty line is not
    p = subprocess.run([str(usprelayd), "--hash-password"], input="x", capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("$pbkdf2-sha256$")
    p = subprocess.run([str(usprelayd), "--hash-password"], input="\n", capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1 and "empty password" in p.stderr and p.stdout == ""
    for bad in ("999", "10000001", "12x", "-5", ""):
        p = subprocess.run([str(usprelayd), "--hash-password", "--iterations", bad],
                           input="x\n", capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (bad, p.stderr)
        assert "--iterations" in p.stderr
    p = subprocess.run([str(usprelayd), "--iterations", "2000"], input="x\n",
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2


# ----------------------------------------------------------------- STOMP

def test_stomp_password_file(start_relay, pwfile):
    relay = start_relay(stomp={"password_file": str(pwfile)})
    a = relay.stomp_client()
    a.connect(A, login="agent1", passcode="s3cret")
    a.subscribe()
    stomp_refused(relay, "agent1", "s3cret2")
    stomp_refused(relay, "agent1", "S3cret")
    stomp_refused(relay, "nobody", "s3cret")         # unknown user: the same answer
    stomp_refused(relay, "agent1", None)
    stomp_refused(relay, None, None)
    relay.wait_log(r"event=auth_failed .*peer=127\.0\.0\.1:\d+ .*user=\"nobody\" "
                   r"reason=bad_credentials failures=3")
    assert relay.count_log(r"event=auth_failed ") == 5
    assert "s3cret2" not in relay.log()             # passwords are never logged
    # A refused client bound nothing; a passcode sent raw or escaped both work.
    b = relay.stomp_client()
    b.connect(B, login="agent2", passcode="p:w\\x")
    b.subscribe()
    c = relay.stomp_client()
    c.connect("self::auth-c", login="agent2", passcode="p\\cw\\\\x")
    r = w.no_session(A, B, b"authenticated")
    b.send_record(r)
    assert a.recv_record() == r


def test_sighup_reloads_password_file(start_relay, pwfile, usprelayd):
    """SIGHUP loads the password file again: a user added since is accepted, a removed
    one refused; sessions already logged in stay."""
    import signal
    relay = start_relay(stomp={"password_file": str(pwfile)})
    a = relay.stomp_client()
    a.connect(A, login="agent1", passcode="s3cret")
    stomp_refused(relay, "agent9", "n3w")
    lines = [l for l in pwfile.read_text().splitlines() if not l.startswith("agent1:")]
    lines.append("agent9:%s" % hash_password(usprelayd, "n3w", "--iterations", str(ITER)))
    pwfile.write_text("\n".join(lines) + "\n")
    relay.send_signal(signal.SIGHUP)
    relay.wait_log(r"event=passwd_reloaded listener=stomp users=3")
    b = relay.stomp_client()
    b.connect(B, login="agent9", passcode="n3w")
    stomp_refused(relay, "agent1", "s3cret", eid="self::auth-gone")
    a.subscribe()                                     # the open session is untouched


# ----------------------------------------------------------------- MQTT

def test_mqtt_password_file(start_relay, pwfile):
    relay = start_relay(mqtt={"password_file": str(pwfile)})
    ok5 = relay.mqtt_client()
    ok5.connect("", eid="self::auth5", username="mq", password="m-pass")
    ok4 = relay.mqtt_client(level=4)
    ok4.connect("os::auth4", username="agent1", password="s3cret")
    p = mqtt_refused(relay, 5, 0x86, username="mq", password="wrong")
    assert p.props.get(w.P_REASON_STRING) == "bad user name or password"
    mqtt_refused(relay, 5, 0x86, username="nobody", password="m-pass")
    mqtt_refused(relay, 5, 0x86, username="mq")
    p = mqtt_refused(relay, 4, 0x04, username="agent1", password="s3cretX")
    assert p.body == b"\x00\x04"
    relay.wait_log(r"event=auth_failed .*mtp=mqtt .*user=\"agent1\" reason=bad_credentials "
                   r"failures=4")
    # a success does not reset the count of this address
    ok = relay.mqtt_client(level=4)
    ok.connect("os::auth4b", username="mq", password="m-pass")
    mqtt_refused(relay, 4, 0x04)
    relay.wait_log(r"event=auth_failed .*user=- reason=bad_credentials failures=5")
    ok5.ping()
    ok4.ping()
    ok.ping()


def test_mqtt_over_websocket_uses_password_file(start_relay, pwfile):
    relay = start_relay(mqtt={"password_file": str(pwfile)})

    def ws_mqtt():
        ws = relay.ws_client("/usp", eid=None, protocols=("mqtt",))
        assert ws.status == 101
        return relay.track(w.MqttClient(None, sock=w.WsStream(ws), level=5))

    m = ws_mqtt()
    m.connect("", eid="self::auth-ws", username="mq", password="m-pass")
    m.ping()
    bad = ws_mqtt()
    bad.connect("", eid="self::auth-ws2", username="mq", password="nope", expect=0x86)
    relay.wait_log(r"event=auth_failed .*peer=ws:127\.0\.0\.1:\d+ .*reason=bad_credentials "
                   r"failures=1")


# ----------------------------------------------------------------- rate limiting

def stomp_from(relay, monkeypatch, source):
    """A StompClient whose connection comes from SOURCE (another loopback address)."""
    real = socket.create_connection
    with monkeypatch.context() as mp:
        mp.setattr(socket, "create_connection",
                   lambda addr, timeout=None, **kw: real(addr, timeout, (source, 0)))
        return relay.stomp_client()


def test_rate_limit(start_relay, pwfile, monkeypatch):
    relay = start_relay(stomp={"password_file": str(pwfile)},
                        mqtt={"password_file": str(pwfile)})
    # Failures from one address add up across listeners and protocols.
    for i in range(FAILURES):
        if i % 2:
            stomp_refused(relay, "agent1", "guess%d" % i)
        else:
            mqtt_refused(relay, 5, 0x86, username="mq", password="guess%d" % i)
    relay.wait_log(r"reason=bad_credentials failures=%d\n" % FAILURES)
    assert relay.count_log(r"action=block") == 0
    stomp_refused(relay, "agent1", "one-too-many")
    relay.wait_log(r"reason=bad_credentials failures=%d action=block" % (FAILURES + 1))
    # Now even the right password is refused, unchecked, on every protocol.
    stomp_refused(relay, "agent1", "s3cret")
    p = mqtt_refused(relay, 5, 0x8A, username="mq", password="m-pass")
    assert "try again later" in p.props.get(w.P_REASON_STRING, "")
    mqtt_refused(relay, 4, 0x05, username="mq", password="m-pass")
    relay.wait_log(r"event=auth_failed .*reason=blocked failures=%d" % (FAILURES + 1))
    assert relay.count_log(r"reason=blocked") == 3
    # Another source address is not affected.
    other = stomp_from(relay, monkeypatch, "127.0.0.2")
    other.connect(A, login="agent1", passcode="s3cret")
    other.subscribe()


def test_rate_limit_on_login_pair(start_relay, monkeypatch):
    """Without password_file the login/passcode pair is limited the same way."""
    relay = start_relay(stomp={"login": "usp", "passcode": "pair-pw"})
    for i in range(FAILURES + 1):
        stomp_refused(relay, "usp", "guess%d" % i)
    relay.wait_log(r"failures=%d action=block" % (FAILURES + 1))
    stomp_refused(relay, "usp", "pair-pw")
    relay.wait_log(r"reason=blocked failures=%d" % (FAILURES + 1))
    other = stomp_from(relay, monkeypatch, "127.0.0.3")
    other.connect(A, login="usp", passcode="pair-pw")


def test_success_does_not_reset_the_limit(start_relay):
    """One valid account must not renew the allowance for guessing others': failures
    interleaved with successes still block at the sixth."""
    relay = start_relay(mqtt={"username": "u", "password": "pw"})
    for i in range(FAILURES + 1):
        ok = relay.mqtt_client(level=4)
        ok.connect("os::auth-reset", username="u", password="pw")
        ok.close()
        mqtt_refused(relay, 4, 0x04, username="u", password="x%d" % i)
    relay.wait_log(r"failures=%d action=block" % (FAILURES + 1))
    mqtt_refused(relay, 4, 0x05, username="u", password="pw")
    relay.wait_log(r"reason=blocked")


# ----------------------------------------------------------------- configuration

def check_config(usprelayd, path):
    p = subprocess.run([str(usprelayd), "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout + p.stderr


def test_config_errors(usprelayd, make_config, pwfile, tmp_path):
    path, _ = make_config(stomp={"password_file": str(pwfile)},
                          mqtt={"password_file": str(pwfile)})
    rc, out = check_config(usprelayd, path)
    assert rc == 0, out

    path, _ = make_config(stomp={"password_file": str(pwfile), "login": "u", "passcode": "p"})
    rc, out = check_config(usprelayd, path)
    assert rc == 1
    assert re.search(r"listeners\[0\]\.password_file: .*login", out), out

    path, _ = make_config(mqtt={"password_file": str(pwfile), "username": "u",
                                "password": "p"})
    rc, out = check_config(usprelayd, path)
    assert rc == 1
    assert re.search(r"listeners\[3\]\.password_file: .*username", out), out

    path, _ = make_config(uds={"password_file": str(pwfile)})
    rc, out = check_config(usprelayd, path)
    assert rc == 1 and "password_file" in out, out

    path, _ = make_config(stomp={"password_file": str(tmp_path / "missing")})
    rc, out = check_config(usprelayd, path)
    assert rc == 1
    assert re.search(r":\d+: listeners\[0\]\.password_file: .*missing: cannot open", out), out

    path, _ = make_config(stomp={"password_file": ""})
    rc, out = check_config(usprelayd, path)
    assert rc == 1 and "password_file" in out, out


def test_config_malformed_password_file(usprelayd, make_config, tmp_path, start_relay):
    bad = tmp_path / "bad-passwd"
    bad.write_text("# ok so far\nagent1:%s\nagent2:$pbkdf2-sha256$500$c2FsdHNhbHQ$"
                   "A+Pkljr7A4W/zbzUWSStAQ\n" % hash_password(usprelayd, "x", "--iterations",
                                                             str(ITER)))
    path, _ = make_config(mqtt={"password_file": str(bad)})
    rc, out = check_config(usprelayd, path)
    assert rc == 1
    # config file:line: key: password file:line: what
    assert re.search(r"relay\d+\.conf:\d+: listeners\[3\]\.password_file: %s:3: iterations "
                     r"out of range" % re.escape(str(bad)), out), out
    dup = tmp_path / "dup-passwd"
    h = hash_password(usprelayd, "x", "--iterations", str(ITER))
    dup.write_text("a:%s\nb:%s\na:%s\n" % (h, h, h))
    path, _ = make_config(stomp={"password_file": str(dup)})
    rc, out = check_config(usprelayd, path)
    assert rc == 1
    assert "%s:3: user \"a\" already defined on line 1" % dup in out, out
    # and the daemon refuses to start with it
    r = start_relay(stomp={"password_file": str(dup)}, wait_ready=False)
    assert r.wait_exit() == 1
    assert "already defined on line 1" in r.log()
