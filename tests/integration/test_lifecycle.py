"""The daemon's life: SIGTERM/SIGINT shut down gracefully (every MTP says goodbye, exit
0, a summary line), ``-t`` checks a configuration, and a listener that cannot be opened
stops the start with a clear log line."""

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import uspwire as w


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signal_graceful_stop(relay, sig):
    s = relay.stomp_endpoint("self::ctrl")
    u = relay.uds_endpoint("self::agent")
    idle = relay.stomp_client()            # connected at TCP level only
    r = w.no_session("self::ctrl", "self::agent", b"before the end")
    u.send_record(r)
    assert s.recv_record() == r

    relay.send_signal(sig)
    err = s.expect_error_close()
    assert err["message"] == "relay shutting down"
    assert u.expect_error_close() == "relay shutting down"
    assert idle.expect_error_close()["message"] == "relay shutting down"
    assert relay.stop() == 0
    log = relay.log()
    name = "TERM" if sig == signal.SIGTERM else "INT"
    assert re.search(r"event=signal signal=%s action=stop" % name, log)
    m = re.search(r"event=stopped records_in=(\d+) records_out=(\d+)", log)
    assert m and m.groups() == ("1", "1"), log[-2000:]
    assert re.search(r'event=conn_close .*eid="self::ctrl" reason=shutdown', log)
    # Nothing is accepted any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", relay.stomp_port), 1).close()


def test_stop_with_queued_output(start_relay):
    """A client that does not read: the relay still exits within shutdown_timeout."""
    relay = start_relay(relay={"shutdown_timeout": 1.0})
    sink = relay.stomp_endpoint("self::sink")
    sink.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    src = relay.uds_endpoint("self::src")
    blob = w.no_session("self::sink", "self::src", b"z" * 1000000)
    marker = relay.stomp_endpoint("self::marker")
    for _ in range(8):
        src.send_record(blob)
    # Records from one connection are handled in order: once the marker is here, the
    # eight are queued for the sink.
    m = w.no_session("self::marker", "self::src", b"m")
    src.send_record(m)
    assert marker.recv_record() == m
    t0 = time.monotonic()
    assert relay.stop() == 0
    assert time.monotonic() - t0 < 1.0 + 4.0
    assert re.search(r'event=conn_close .*eid="self::sink" reason=shutdown records_in=0 '
                     r'records_out=8', relay.log())


def test_check_config_good(usprelayd, make_config):
    path, _ = make_config()
    p = subprocess.run([str(usprelayd), "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 0, p.stderr
    assert "configuration ok" in p.stdout


def test_check_config_repo_example(usprelayd):
    """conf/usprelay.conf, the documented example, is valid."""
    repo = Path(__file__).resolve().parents[2]
    p = subprocess.run([str(usprelayd), "-t", "-c", str(repo / "conf/usprelay.conf")],
                       capture_output=True, text=True, timeout=20, cwd=str(repo))
    assert p.returncode == 0, p.stderr


def test_check_config_bad(usprelayd, tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text(
        'relay = {\n'
        '  endpoint_id = "self::usprelay";\n'
        '  wrokers = 2;\n'
        '};\n'
        'listeners = (\n'
        '  { name = "s"; type = "stomp"; address = "127.0.0.1";\n'
        '    port = 70000; }\n'
        ');\n')
    p = subprocess.run([str(usprelayd), "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1
    assert "%s:3: relay.wrokers" % path in p.stderr
    assert "%s:7: listeners[0].port" % path in p.stderr
    # The daemon itself refuses to start on it the same way.
    p = subprocess.run([str(usprelayd), "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1 and "relay.wrokers" in p.stderr


def test_check_config_syntax_error(usprelayd, tmp_path):
    path = tmp_path / "syntax.conf"
    path.write_text('relay = {\n  workers = 2\n};\n')
    p = subprocess.run([str(usprelayd), "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1
    assert re.search(re.escape(str(path)) + r":\d+: ", p.stderr), p.stderr


def test_port_in_use(start_relay):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        r = start_relay(stomp={"port": port}, wait_ready=False)
        assert r.wait_exit() != 0
        log = r.log()
        assert re.search(r"level=error event=listener_failed listener=stomp type=stomp "
                         r"address=127\.0\.0\.1 port=%d error=\"Address already in use\"" % port,
                         log), log
        assert "event=started" not in log
    finally:
        blocker.close()
