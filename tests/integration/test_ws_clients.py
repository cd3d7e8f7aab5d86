"""Third-party and our own WebSocket clients against the relay's WebSocket MTP (spec notes
§3, §9 items 10-12): Debian's python3-websockets (asyncio API) as agent and as controller,
Records both ways with STOMP, MQTT and UDS peers byte-identical up to 5 MiB, with and
without its default permessage-deflate offer, its Pings, a refusal it sees as an HTTP
status, and the relay's Close 1003 as it reports it; then usp-testclient's ws mode
(tests/tools/usp-testclient.c) as agent, controller, echo peer, with the deprecated
extension header and its peer check, and with fragmented frames both ways.
"""

import asyncio
import os

import pytest
import websockets

import uspwire as w
from conftest import CTRL_EID, WS_CTRL_PATH

MIB = 1024 * 1024
BIG = 5 * MIB
BIG_LIMITS = {"max_record_size": 6 * MIB}
SIZES = [("min", 0), ("1KiB", 1024), ("5MiB", BIG)]


def ws_uri(relay, eid, path="/usp"):
    relay._need_ws()
    return "ws://127.0.0.1:%d%s?%s" % (relay.ws_port, path, w.ws_query(eid))


def py_connect(relay, eid, path="/usp", **kw):
    """websockets.connect() as EID offering v1.usp; max_size raised for 5 MiB Records."""
    kw.setdefault("max_size", 8 * MIB)
    kw.setdefault("open_timeout", 10)
    return websockets.connect(ws_uri(relay, eid, path), subprotocols=["v1.usp"], **kw)


async def exchange(ws, me, peer, peer_eid, sizes=SIZES):
    """Records of every size from the websockets client to PEER and back; blocking peer
    calls run in a thread so the client's event loop keeps reading."""
    for name, size in sizes:
        up = w.no_session_of_size(peer_eid, me, size)
        await ws.send(up)
        got = await asyncio.to_thread(peer.recv_record, 30)
        assert len(got) == len(up) and got == up, "%s websockets -> peer" % name
        down = w.no_session_of_size(me, peer_eid, size)
        await asyncio.to_thread(peer.send_record, down)
        msg = await asyncio.wait_for(ws.recv(), 30)
        assert isinstance(msg, bytes), "a Record must come as a binary message"
        assert len(msg) == len(down) and msg == down, "%s peer -> websockets" % name


# ----------------------------------------------------------------- python3-websockets

@pytest.mark.parametrize("kind", ["stomp", "mqtt5", "mqtt4", "uds"])
def test_websockets_agent(start_relay, kind):
    """websockets as an agent on /usp (compression not offered): v1.usp negotiated, no
    extension answered, Records up to 5 MiB both ways with a KIND controller."""
    relay = start_relay(limits=BIG_LIMITS)
    agent = "os::00256D-pyws"
    ctrl = "self::ctl-" + kind.replace("mqtt", "m")
    peer = relay.endpoint(kind, ctrl)

    async def run():
        async with py_connect(relay, agent, compression=None) as ws:
            assert ws.subprotocol == "v1.usp"
            assert "Sec-WebSocket-Extensions" not in ws.response_headers
            await exchange(ws, agent, peer, ctrl)

    asyncio.run(run())
    peer.expect_nothing(0.1)


@pytest.mark.parametrize("kind", ["stomp", "mqtt4", "uds"])
def test_websockets_controller(start_relay, kind):
    """websockets as a controller (its own eid on /usp) with a KIND agent, both ways."""
    relay = start_relay(limits=BIG_LIMITS)
    ctrl = "self::py-ctrl"
    agent = "os::00256D-" + kind
    peer = relay.endpoint(kind, agent)

    async def run():
        async with py_connect(relay, ctrl) as ws:
            await exchange(ws, ctrl, peer, agent)

    asyncio.run(run())


def test_websockets_default_offer_on_controller_path(relay):
    """websockets with its defaults (permessage-deflate offered, Pings every 20 s) on the
    controller path without the bbf extension: the relay must not answer an extension the
    client cannot take (websockets would fail the handshake), and Records with C pass
    both ways whatever was negotiated; a Ping of the client is answered."""
    agent = "os::00256D-pydefault"
    c = relay.stomp_endpoint(CTRL_EID)

    async def run():
        async with py_connect(relay, agent, path=WS_CTRL_PATH) as ws:
            assert ws.subprotocol == "v1.usp"
            assert "bbf-usp-protocol" not in ws.response_headers.get(
                "Sec-WebSocket-Extensions", "")
            await exchange(ws, agent, c, CTRL_EID, sizes=[("min", 0), ("64KiB", 65536)])
            pong = await ws.ping(b"py-ping")
            await asyncio.wait_for(pong, 5)

    asyncio.run(run())


def test_websockets_pair_agent_and_controller(relay):
    """A websockets agent and a websockets controller exchange 100 Records each way at
    the same time, in order."""
    agent, ctrl, n = "os::00256D-pa", "self::pc", 100

    async def side(ws, me, peer):
        async def send():
            for i in range(n):
                await ws.send(w.no_session(peer, me, b"%d" % i))

        async def recv():
            got = []
            for _ in range(n):
                rec = w.decode_record(await asyncio.wait_for(ws.recv(), 10))
                assert (rec.to_id, rec.from_id) == (me, peer)
                got.append(int(rec.payload))
            return got

        _, got = await asyncio.gather(send(), recv())
        return got

    async def run():
        async with py_connect(relay, agent) as a, py_connect(relay, ctrl) as c:
            ga, gc = await asyncio.gather(side(a, agent, ctrl), side(c, ctrl, agent))
            assert ga == list(range(n)) and gc == list(range(n))

    asyncio.run(run())


def test_websockets_sees_refusal_status(relay):
    """Without v1.usp websockets must get the relay's HTTP 400 as InvalidStatusCode (its
    parser takes only an "HTTP/1.1" status line)."""

    async def run():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            async with websockets.connect(ws_uri(relay, "os::00256D-chat"),
                                          subprotocols=["chat"], open_timeout=10):
                pass
        assert ei.value.status_code == 400

    asyncio.run(run())


def test_websockets_sees_close_1003(relay):
    """A text message ends the session with 1003, which websockets reports."""

    async def run():
        async with py_connect(relay, "os::00256D-text") as ws:
            await ws.send("not a record")
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1003

    asyncio.run(run())


# ----------------------------------------------------------------- usp-testclient ws

def c_addr(relay, path="/usp"):
    relay._need_ws()
    return "127.0.0.1:%d%s" % (relay.ws_port, path)


def test_c_client_agent_with_stomp_controller(relay, client):
    """usp-testclient ws as an agent: its Records reach a STOMP controller and the
    controller's reach it, in order."""
    agent, ctrl = "os::00256D-cws", "self::c-ctrl"
    s = relay.stomp_endpoint(ctrl)
    c = client("ws", c_addr(relay), "--eid", agent, "--to", ctrl, "--send", 3, "--expect", 3,
                "--timeout", 20)
    c.wait_ready()
    for i in range(1, 4):
        rec = w.decode_record(s.recv_record())
        assert (rec.to_id, rec.from_id) == (ctrl, agent)
        assert int.from_bytes(rec.payload[:8], "big") == i
    for i in range(3):
        s.send_record(w.no_session(agent, ctrl, (100 + i).to_bytes(8, "big")))
    c.expect_ok(3, 3)
    assert [r[:2] + (r[5],) for r in c.recvs()] == [(str(i + 1), ctrl, str(100 + i))
                                                   for i in range(3)]


def test_c_client_echo_with_raw_ws_controller(start_relay, client):
    """usp-testclient ws --echo answers every Record, up to 5 MiB, with its payload."""
    relay = start_relay(limits=BIG_LIMITS)
    agent, ctrl = "os::00256D-cecho", "self::raw-ctrl"
    ctl = relay.ws_endpoint(ctrl)
    c = client("ws", c_addr(relay), "--eid", agent, "--echo", "--expect", 3, "--timeout", 30)
    c.wait_ready()
    for payload in (b"", os.urandom(1000), os.urandom(BIG)):
        ctl.send_record(w.no_session(agent, ctrl, payload))
        rec = w.decode_record(ctl.recv_record(timeout=30))
        assert (rec.to_id, rec.from_id, rec.payload) == (ctrl, agent, payload)
    c.expect_ok(3, 3)


def test_c_client_pair_check_order(relay, client):
    """Two usp-testclient ws endpoints: one echoes, the other sends 200 Records and checks
    their order and padding on the way back."""
    agent, ctrl = "os::00256D-cpair", "self::c-pair"
    echo = client("ws", c_addr(relay), "--eid", agent, "--echo", "--expect", 200,
                   "--timeout", 30)
    echo.wait_ready()
    sender = client("ws", c_addr(relay), "--eid", ctrl, "--to", agent, "--send", 200,
                     "--size", 300, "--expect", 200, "--check-order", "--quiet",
                     "--timeout", 30)
    sender.expect_ok(200, 200)
    echo.expect_ok(200, 200)


def test_c_client_extension_and_peer_check(relay, client):
    """--ws-ext on the controller path: the relay answers the controller's eid, the
    client reports it and with --expect-peer accepts it; with a wrong --expect-peer the
    client aborts (R-WS / §9.12) before reporting ready."""
    agent = "os::00256D-cext"
    ctl = relay.stomp_endpoint(CTRL_EID)
    c = client("ws", c_addr(relay, WS_CTRL_PATH), "--eid", agent, "--ws-ext",
                "--expect-peer", CTRL_EID, "--expect", 1, "--timeout", 20)
    assert c.wait_ready() == "ready peer=%s" % CTRL_EID
    r = w.no_session(agent, CTRL_EID, b"hello C")
    ctl.send_record(r)
    c.expect_ok(0, 1)

    bad = client("ws", c_addr(relay, WS_CTRL_PATH), "--eid", "os::00256D-cext2", "--ws-ext",
                  "--expect-peer", "self::someone-else", "--expect", 1, "--timeout", 5)
    rc = bad.finish(20)
    assert rc != 0, bad.describe()
    assert not any(l.startswith("ready") for l in bad.lines), bad.describe()


def test_c_client_fragments_both_ways(start_relay, client, tmp_path):
    """--ws-fragment N: the client's Records in frames of N bytes are reassembled by the
    relay; with fragment_size on the listener, Records to the client come fragmented and
    it reassembles them to the exact bytes."""
    relay = start_relay(ws={"fragment_size": 200}, limits=BIG_LIMITS)
    agent, ctrl = "os::00256D-cfrag", "self::f-ctrl"
    ctl = relay.stomp_endpoint(ctrl)
    out = tmp_path / "out"
    out.mkdir()
    c = client("ws", c_addr(relay), "--eid", agent, "--to", ctrl, "--send", 3, "--size", 5000,
                "--ws-fragment", 100, "--expect", 3, "--out-dir", out, "--timeout", 20)
    c.wait_ready()
    for i in range(1, 4):
        rec = w.decode_record(ctl.recv_record())
        assert rec.from_id == agent and len(rec.payload) == 5000
        assert int.from_bytes(rec.payload[:8], "big") == i
        assert rec.payload[8:] == bytes((i + k) & 0xFF for k in range(8, 5000))
    sent = [w.no_session(agent, ctrl, os.urandom(n)) for n in (10, 999, 70000)]
    for r in sent:
        ctl.send_record(r)
    c.expect_ok(3, 3)
    assert [(out / ("%d.rec" % i)).read_bytes() for i in (1, 2, 3)] == sent
