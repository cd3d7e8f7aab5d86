"""UDS listeners (spec notes §6, §9 items 5 and 24-25): the handshake answer, per-pair
routing on a listener standing in for one peer, stale socket files, the socket mode."""

import os
import socket
import stat

import uspwire as w

CTRL = "self::usp-controller"
AGENT = "self::agent"
OTHER = "self::other-ctrl"


def test_handshake_answers(relay):
    assert relay.uds_endpoint("self::a1").peer_eid == "self::usprelay"
    assert relay.uds_endpoint("self::a2", path=relay.uds_ctrl_path).peer_eid == CTRL


def test_relay_endpoint_id_from_config(start_relay):
    relay = start_relay(relay={"endpoint_id": "os::00256D-0123456789"})
    assert relay.uds_endpoint("self::a1").peer_eid == "os::00256D-0123456789"


def test_peer_listener_routes_only_the_peer(relay):
    """An agent on the controller's path is reachable over that link from the controller
    only: a Record from anyone else finds no route (obuspa drops foreign from_ids)."""
    ctrl = relay.stomp_endpoint(CTRL)
    other = relay.stomp_endpoint(OTHER)
    agent = relay.uds_endpoint(AGENT, path=relay.uds_ctrl_path, expect_peer=CTRL)

    other.send_record(w.no_session(AGENT, OTHER, b"not for this link"))
    relay.wait_log(r'event=record_dropped .*eid="self::other-ctrl" reason=drop_no_route '
                   r'to_id="self::agent"')
    r = w.no_session(AGENT, CTRL, b"from the peer")
    ctrl.send_record(r)
    assert agent.recv_record() == r       # the foreign one, sent first, never came
    agent.expect_nothing(0.2)

    up = w.no_session(CTRL, AGENT, b"agent to its controller")
    agent.send_record(up)
    assert ctrl.recv_record() == up

    # The same agent ID may at the same time hold a general link (another pair key).
    general = relay.uds_endpoint(AGENT, expect_peer="self::usprelay")
    r2 = w.no_session(AGENT, OTHER, b"via the general link")
    other.send_record(r2)
    assert general.recv_record() == r2
    r3 = w.no_session(AGENT, CTRL, b"controller still uses its pair link")
    ctrl.send_record(r3)
    assert agent.recv_record() == r3
    general.expect_nothing(0.1)
    agent.expect_nothing(0.1)


def test_uds_to_uds(relay):
    a = relay.uds_endpoint("self::ua")
    b = relay.uds_endpoint("self::ub")
    r = w.no_session("self::ub", "self::ua", b"\x00" * 100)
    a.send_record(r)
    assert b.recv_record() == r
    # Several Records in one frame are all taken, in order.
    recs = [w.no_session("self::ua", "self::ub", b"%d" % i) for i in range(5)]
    b.send_tlvs([(w.TLV_RECORD, x) for x in recs])
    for x in recs:
        assert a.recv_record() == x


def test_stale_socket_removed(start_relay):
    first = start_relay()
    paths = (first.uds_path, first.uds_ctrl_path)
    first.kill()
    assert all(os.path.exists(p) for p in paths)      # left behind by SIGKILL
    second = start_relay(uds={"path": paths[0]}, uds_ctrl={"path": paths[1]})
    second.wait_log(r"event=uds_stale_removed path=" + paths[0])
    assert second.uds_endpoint("self::a").peer_eid == "self::usprelay"
    assert second.uds_endpoint("self::b", path=paths[1]).peer_eid == CTRL


def test_live_socket_not_stolen(start_relay):
    first = start_relay()
    second = start_relay(uds={"path": first.uds_path}, wait_ready=False)
    assert second.wait_exit() != 0
    assert "another process is listening" in second.log()
    assert "event=listener_failed" in second.log()
    # The first relay still owns and serves its socket.
    assert first.uds_endpoint("self::a").peer_eid == "self::usprelay"


def test_path_that_is_not_a_socket(start_relay, sock_dir):
    p = sock_dir / "plain"
    p.write_text("not a socket")
    r = start_relay(uds={"path": str(p)}, wait_ready=False)
    assert r.wait_exit() != 0
    assert "not a socket" in r.log()
    assert p.read_text() == "not a socket"


def test_socket_mode(start_relay):
    relay = start_relay(uds={"mode": "0640"}, uds_ctrl={"mode": "0666"})
    assert stat.S_ISSOCK(os.stat(relay.uds_path).st_mode)
    assert stat.S_IMODE(os.stat(relay.uds_path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(relay.uds_ctrl_path).st_mode) == 0o666


def test_socket_files_removed_on_exit(relay):
    assert os.path.exists(relay.uds_path)
    assert relay.stop() == 0
    assert not os.path.exists(relay.uds_path)
    assert not os.path.exists(relay.uds_ctrl_path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(relay.uds_path)
        raise AssertionError("socket still accepting after exit")
    except OSError:
        pass
    finally:
        s.close()
