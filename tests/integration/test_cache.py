"""The offline cache (relay/cache.c, TR-369's Caching Function; spec notes §9 items 8-9):
Records for an endpoint that is not connected, not yet ready (STOMP before SUBSCRIBE) or
behind on its output wait per destination and go out in their original order, before
any newer Record, on whatever MTP the endpoint comes back; bounds evict the oldest
first; ttl expires; SAR series are kept, dropped and delivered whole; a DisconnectRecord
discards its session's Records; caching is off per listener, per destination pattern or
altogether. Every count is read from the relay's "stopped" line. (The other suites run
without the cache: conftest turns it off unless a test passes a cache group.)"""

import threading

import pytest

import uspwire as w

CTRL = "self::cache-ctrl"
AGENT = "os::00256D-cache-agent"
OTHER = "os::00256D-cache-other"
WAIT = 10.0
KINDS = ["stomp", "uds", "mqtt5", "mqtt4", "ws"]


def rec(i, to=AGENT, frm=CTRL, size=0):
    return w.no_session(to, frm, b"record %06d " % i + b"x" * size)


def seg(to, frm, seq, state, payload, session=7):
    return w.session_context(to, frm, [payload], session_id=session, sequence_id=seq,
                             expected_id=seq, payload_sar_state=state,
                             payloadrec_sar_state=state)


BEGIN, INPROCESS, COMPLETE = 1, 2, 3


def series(to, frm, n, size, first_seq=1, session=7):
    """N segments of one SAR series (each SIZE payload bytes)."""
    out = []
    for k in range(n):
        state = BEGIN if k == 0 else COMPLETE if k == n - 1 else INPROCESS
        out.append(seg(to, frm, first_seq + k, state,
                       (b"seg %04d " % k) + bytes([k % 251]) * size, session))
    return out


def puback_ok(ctrl, r):
    p = ctrl.send_record(r, qos=1)
    assert p.reason == 0, "PUBACK reason 0x%02x" % p.reason


def recv_all(c, n):
    return [c.recv_record(timeout=WAIT) for _ in range(n)]


def test_offline_agent_gets_100_in_order_before_new_ones(start_relay):
    """Agent offline: a controller on MQTT 5 sends 100 Records (QoS 1, each PUBACKed
    0x00 Success, not 0x10 No matching subscribers); the agent connects on STOMP, a new
    Record is sent before it subscribes; it then receives the 100 in order and the new
    one last, each once."""
    relay = start_relay(cache={})
    ctrl = relay.mqtt_endpoint(CTRL)
    sent = [rec(i) for i in range(100)]
    for r in sent:
        puback_ok(ctrl, r)
    agent = relay.stomp_endpoint(AGENT, subscribe=False)
    new = rec(1000)
    puback_ok(ctrl, new)
    agent.subscribe()
    assert recv_all(agent, 101) == sent + [new]
    agent.expect_nothing(0.3)
    later = rec(1001)
    puback_ok(ctrl, later)
    assert agent.recv_record(timeout=WAIT) == later
    relay.close_clients()
    c = relay.stopped_counters()
    assert c["cache_stored"] == 101 and c["cache_delivered"] == 101, c
    assert c["drop_no_route"] == 0, c


@pytest.mark.parametrize("kind", KINDS)
def test_delivered_on_any_mtp(start_relay, kind):
    """Records cached while the agent is away reach it on whichever MTP it returns."""
    relay = start_relay(cache={})
    ctrl = relay.stomp_endpoint(CTRL)
    # MQTT 3.1.1 takes its endpoint ID from the client id: an "os::" ID.
    eid = AGENT if kind != "mqtt4" else "os::00256D-cache-agent4"
    sent = [rec(i, to=eid, size=i * 97) for i in range(20)]
    for r in sent[:-1]:
        ctrl.send_record(r)
    ctrl.send_record(sent[-1], receipt="last")  # the relay has them all once answered
    ctrl.expect_receipt("last")
    agent = relay.endpoint(kind, eid)
    assert recv_all(agent, 20) == sent
    back = w.no_session(CTRL, eid, b"answer")
    agent.send_record(back)
    assert ctrl.recv_record(timeout=WAIT) == back


def test_ttl_expiry_counted(start_relay):
    """Records older than cache.ttl are dropped (cache_expired), not delivered; newer
    ones are."""
    relay = start_relay(cache={"ttl": 0.5})
    ctrl = relay.mqtt_endpoint(CTRL)
    for i in range(5):
        puback_ok(ctrl, rec(i))
    import time
    time.sleep(1.6)  # the relay expires once a second
    fresh = rec(99)
    puback_ok(ctrl, fresh)
    agent = relay.uds_endpoint(AGENT)
    assert agent.recv_record(timeout=WAIT) == fresh
    agent.expect_nothing(0.3)
    relay.close_clients()
    c = relay.stopped_counters()
    assert c["cache_expired"] == 5 and c["cache_delivered"] == 1, c


def test_count_and_byte_bounds_evict_oldest(start_relay):
    """Per endpoint: 10 Records at most (15 sent: the 5 oldest go, cache_evicted) and
    4096 bytes (6 Records of ~1000 bytes: only the newest 3 fit, 3 more evicted)."""
    relay = start_relay(limits={"max_record_size": 4096, "max_output_queue": 65536},
                        cache={"max_records_per_endpoint": 10,
                               "max_bytes_per_endpoint": 4096})
    ctrl = relay.mqtt_endpoint(CTRL)
    small = [rec(i) for i in range(15)]
    for r in small:
        puback_ok(ctrl, r)
    a = relay.stomp_endpoint(AGENT)
    assert recv_all(a, 10) == small[5:]
    a.expect_nothing(0.2)
    a.close()
    big = [rec(i, size=980) for i in range(6)]
    assert all(990 <= len(r) <= 1100 for r in big)
    for r in big:
        puback_ok(ctrl, r)
    a = relay.mqtt_endpoint(AGENT)
    assert recv_all(a, 3) == big[3:]
    a.expect_nothing(0.2)
    relay.close_clients()
    c = relay.stopped_counters()
    assert c["cache_evicted"] == 5 + 3 and c.get("cache_evicted_global", 0) == 0, c


def test_global_bound_evicts_oldest_of_any_endpoint(start_relay):
    """In all 8 Records at most: 6 for one agent, then 6 for another: the 4 oldest of all
    (the first agent's) are evicted (cache_evicted_global)."""
    relay = start_relay(cache={"max_records_per_endpoint": 6, "max_records": 8})
    ctrl = relay.mqtt_endpoint(CTRL)
    first = [rec(i) for i in range(6)]
    other = [rec(i, to=OTHER) for i in range(6)]
    for r in first + other:
        puback_ok(ctrl, r)
    a = relay.uds_endpoint(AGENT)
    assert recv_all(a, 2) == first[4:]
    a.expect_nothing(0.2)
    o = relay.uds_endpoint(OTHER)
    assert recv_all(o, 6) == other
    relay.close_clients()
    c = relay.stopped_counters()
    assert c["cache_evicted_global"] == 4 and c.get("cache_evicted", 0) == 0, c


def test_sar_series_crosses_stomp_mqtt_uds_whole_and_ordered(start_relay):
    """A 5 MiB message in 50 SAR segments from a STOMP controller to an MQTT agent and
    the same to a UDS agent, with another sender's Records interleaved; the agents are
    offline for the first half and connect while the series is still arriving: each
    receives every Record once, per sender in order, the series contiguous and intact."""
    relay = start_relay(cache={})
    ctrl = relay.stomp_endpoint(CTRL)
    noisy = relay.uds_endpoint("self::cache-noise")
    mq, ux = "os::00256D-sar-mqtt", "os::00256D-sar-uds"
    seg_size = 5 * 1024 * 1024 // 50
    plan = {eid: series(eid, CTRL, 50, seg_size) for eid in (mq, ux)}
    noise = {eid: [w.no_session(eid, "self::cache-noise", b"noise %d" % i) for i in range(25)]
             for eid in (mq, ux)}
    agents = {}
    for k in range(50):
        if k == 25:
            ctrl.send_record(w.no_session(CTRL, CTRL, b"x"), receipt="half")
            agents[mq] = relay.mqtt_endpoint(mq)
            agents[ux] = relay.uds_endpoint(ux)
        for eid in (mq, ux):
            ctrl.send_record(plan[eid][k])
            if k % 2:
                noisy.send_record(noise[eid][k // 2])
    for eid, a in agents.items():
        got = recv_all(a, 75)
        segs = [r for r in got if r in plan[eid]]
        assert segs == plan[eid], "series out of order or incomplete for " + eid
        first = got.index(plan[eid][0])
        assert got[first:first + 50] == plan[eid], "series interleaved for " + eid
        assert [r for r in got if r in noise[eid]] == noise[eid]
        a.expect_nothing(0.2)


def test_broken_series_dropped_whole(start_relay):
    """A series with a missing segment (3 of 6 never sent) is never delivered in part:
    what was cached is dropped whole, the rest as it arrives (cache_sar_broken 5); a new
    series in that session afterwards and the no-session Records around it arrive."""
    relay = start_relay(cache={})
    ctrl = relay.mqtt_endpoint(CTRL)
    broken = series(AGENT, CTRL, 6, 100)
    good = series(AGENT, CTRL, 3, 100, first_seq=7)
    around = [rec(i) for i in range(3)]
    puback_ok(ctrl, around[0])
    for r in broken[:2] + broken[3:]:
        puback_ok(ctrl, r)
    puback_ok(ctrl, around[1])
    for r in good:
        puback_ok(ctrl, r)
    puback_ok(ctrl, around[2])
    agent = relay.stomp_endpoint(AGENT)
    assert recv_all(agent, 6) == [around[0], around[1]] + good + [around[2]]
    agent.expect_nothing(0.3)
    relay.close_clients()
    c = relay.stopped_counters()
    assert c["cache_sar_broken"] == 5, c


def test_disconnect_record_flushes_its_session(start_relay):
    """The agent connects but has not subscribed yet (STOMP: Records still wait) and
    sends a DisconnectRecord to the controller: the controller's session-context Records
    waiting for it are dropped (cache_flushed), its no-session ones and another
    controller's session Records are delivered once the agent subscribes."""
    relay = start_relay(cache={})
    ctrl = relay.mqtt_endpoint(CTRL)
    ctrl2 = relay.mqtt_endpoint("self::cache-ctrl2")
    stale = [w.session_context(AGENT, CTRL, [b"stale %d" % i], sequence_id=i + 1)
             for i in range(3)]
    keep = [rec(1), w.session_context(AGENT, "self::cache-ctrl2", [b"other session"])]
    puback_ok(ctrl, stale[0])
    puback_ok(ctrl, keep[0])
    puback_ok(ctrl, stale[1])
    puback_ok(ctrl2, keep[1])
    puback_ok(ctrl, stale[2])
    agent = relay.stomp_endpoint(AGENT, subscribe=False)
    bye = w.disconnect(CTRL, AGENT, reason="rebooted")
    agent.send_record(bye)
    assert ctrl.recv_record(timeout=WAIT) == bye
    agent.subscribe()
    assert recv_all(agent, 2) == keep
    agent.expect_nothing(0.3)
    relay.close_clients()
    c = relay.stopped_counters()
    assert c["cache_flushed"] == 3, c


def test_caching_off_per_listener_pattern_and_globally(start_relay):
    """cache = false on a listener: its Records for offline endpoints are dropped as
    before (no_route); cache.exclude: Records to matching IDs are not cached; other
    Records are."""
    relay = start_relay(cache={"exclude": ["os::00256D-nocache*"]}, mqtt={"cache": False})
    nc = relay.mqtt_endpoint(CTRL)  # on the cache = false listener
    p = nc.send_record(rec(1), qos=1)
    assert p.reason == 0x10, "PUBACK reason 0x%02x" % p.reason
    ctrl = relay.stomp_endpoint("self::cache-ctrl-stomp")
    ctrl.send_record(rec(2, to="os::00256D-nocache-1", frm="self::cache-ctrl-stomp"))
    kept = rec(3, frm="self::cache-ctrl-stomp")
    ctrl.send_record(kept, receipt="r")
    ctrl.expect_receipt("r")
    agent = relay.uds_endpoint(AGENT)
    assert agent.recv_record(timeout=WAIT) == kept
    agent.expect_nothing(0.3)
    nocache = relay.uds_endpoint("os::00256D-nocache-1")
    nocache.expect_nothing(0.3)
    relay.close_clients()
    c = relay.stopped_counters()
    assert c["drop_no_route"] == 2 and c["cache_stored"] == 1, c


def test_cache_disabled(start_relay):
    """cache.enabled = false: a Record for an offline endpoint is dropped at once
    (MQTT 5 PUBACK 0x10) and never delivered later."""
    relay = start_relay(cache={"enabled": False})
    ctrl = relay.mqtt_endpoint(CTRL)
    p = ctrl.send_record(rec(1), qos=1)
    assert p.reason == 0x10
    agent = relay.uds_endpoint(AGENT)
    agent.expect_nothing(0.3)


def test_slow_consumer_overflow_goes_to_cache(start_relay):
    """A STOMP agent that does not read while a controller sends 2500 Records of 4 KiB
    (10 MB, more than the kernel buffers; its output bound is 64 KiB): nothing is dropped
    as queue_full, the overflow waits in the cache, and when the agent reads again it
    gets all of them in order."""
    n = 2500
    relay = start_relay(limits={"max_record_size": 16384, "max_output_queue": 65536},
                        cache={"max_records_per_endpoint": n,
                               "max_bytes_per_endpoint": 64 << 20})
    agent = relay.stomp_endpoint(AGENT)
    ctrl = relay.uds_endpoint(CTRL)
    sent = [rec(i, size=4000) for i in range(n)]
    done = threading.Event()

    def produce():
        for r in sent:
            ctrl.send_record(r)
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    assert done.wait(30)
    t.join()
    for i, r in enumerate(sent):
        assert agent.recv_record(timeout=WAIT) == r, "record %d" % i
    agent.expect_nothing(0.2)
    relay.close_clients()
    c = relay.stopped_counters()
    assert c.get("drop_queue_full", 0) == 0, c
    assert c["cache_stored"] > 0 and c["cache_stored"] == c["cache_delivered"], c


@pytest.mark.parametrize("kind", ["stomp", "ws"])
def test_stalled_consumer_closed_its_records_kept(start_relay, kind):
    """A consumer that stops reading altogether: once its output has waited
    limits.stall_timeout without a byte taken, the relay closes it (reason=stalled,
    conn_stalled); what was still cached for it goes to its next connection, in order,
    through to the last Record sent."""
    n = 2500
    relay = start_relay(limits={"max_record_size": 16384, "max_output_queue": 65536,
                                "stall_timeout": 1.0},
                        cache={"max_records_per_endpoint": n,
                               "max_bytes_per_endpoint": 64 << 20})
    stuck = relay.endpoint(kind, AGENT)
    ctrl = relay.uds_endpoint(CTRL)
    sent = [rec(i, size=4000) for i in range(n)]
    for r in sent:
        ctrl.send_record(r)
    relay.wait_log(r'event=conn_close [^\n]*eid="%s" reason=stalled' % AGENT, timeout=WAIT)
    stuck.close()
    again = relay.endpoint(kind, AGENT)
    first = again.recv_record(timeout=WAIT)
    k = sent.index(first)
    assert k > 0  # some went to the stalled connection's socket
    for i in range(k + 1, n):
        assert again.recv_record(timeout=WAIT) == sent[i], "record %d" % i
    again.expect_nothing(0.2)
    relay.close_clients()
    c = relay.stopped_counters()
    assert c["conn_stalled"] == 1, c


def test_cached_records_respect_mqtt_maximum_packet_size(start_relay):
    """Records cached for an MQTT 5 client that then connects with Maximum Packet Size
    64 KiB: those that would make a larger PUBLISH are dropped (drop_too_large), never
    sent, and do not hold up the ones after them."""
    relay = start_relay(cache={})
    ctrl = relay.uds_endpoint(CTRL)
    sizes = [1000, 100 * 1024, 10 * 1024, 65536, 60 * 1024, 200]
    sent = [rec(i, size=s) for i, s in enumerate(sizes)]
    for r in sent:
        ctrl.send_record(r)
    ctrl.send_record(w.no_session(CTRL, CTRL, b"sync"))  # self-addressed: read in order
    relay.wait_log(r"reason=drop_self_addressed")
    rx = relay.mqtt_client()
    rx.connect("", eid=AGENT, props=[(w.P_MAX_PACKET_SIZE, 65536)])
    assert rx.subscribe(rx.topic) == [1]
    fits = [r for r in sent if len(r) + 200 < 65536]
    assert len(fits) == 4
    for r in fits:
        p = rx.recv_record(timeout=WAIT)
        assert p == r
        assert len(p) < 65536
    rx.expect_nothing(0.3)
    relay.close_clients()
    c = relay.stopped_counters()
    assert c["drop_too_large"] == 2 and c["cache_delivered"] == 6, c


def test_stuck_consumer_among_100_producers_stays_in_budget(start_relay):
    """100 producers send to a consumer that never reads and to a healthy one: the stuck
    one's Records beyond its output bound go to the cache, which evicts at its bound, so
    the relay's memory stays within budget; the healthy consumer gets all of its Records,
    each producer's in order. (Latency figures are the benchmarks' business.)"""
    budget = 16 << 20
    relay = start_relay(limits={"max_record_size": 16384, "max_output_queue": 65536},
                        cache={"max_bytes_per_endpoint": 8 << 20, "max_bytes": budget})
    stuck = relay.stomp_endpoint(AGENT)
    healthy = relay.mqtt_endpoint(OTHER)
    producers = [relay.uds_endpoint("self::producer-%03d" % i) for i in range(100)]
    expected = {}
    peak = 0
    for k in range(50):
        for i, p in enumerate(producers):
            frm = "self::producer-%03d" % i
            p.send_record(rec(k, frm=frm, size=4000))
            if k % 10 == 0:
                r = w.no_session(OTHER, frm, b"to healthy %d %d" % (i, k))
                expected.setdefault(frm, []).append(r)
                p.send_record(r)
        peak = max(peak, relay.rss_kib())
    got = {}
    for _ in range(sum(len(v) for v in expected.values())):
        r = healthy.recv_record(timeout=WAIT)
        got.setdefault(w.decode_record(r).from_id, []).append(r)
    assert got == expected
    stuck.close()
    sanitized = relay.sanitized()
    relay.close_clients()
    c = relay.stopped_counters()
    # 20 MB sent to the stuck consumer; the cache held at most 8 MiB of it.
    assert c["cache_evicted"] > 0, c
    if not sanitized:
        assert peak * 1024 < budget + (48 << 20), "relay RSS peaked at %d KiB" % peak


def test_cached_records_checked_against_the_policy_in_force(start_relay):
    """Records cached under a permissive policy, then a SIGHUP denying that controller
    to agents: when the agent connects they are dropped (drop_policy), not delivered."""
    import signal
    from pathlib import Path
    from conftest import render_config
    relay = start_relay(cache={})
    ctrl = relay.mqtt_endpoint(CTRL)
    for i in range(3):
        puback_ok(ctrl, rec(i))
    sections = relay.info.sections
    sections["policy"] = {"rules": ({"action": "deny", "from": [CTRL], "to": ["os::*"]},)}
    Path(relay.config_path).write_text(render_config(sections))
    start = len(relay.log())
    relay.send_signal(signal.SIGHUP)
    relay.wait_log(r"event=policy_reloaded rules=1 ", start=start)
    agent = relay.uds_endpoint(AGENT)
    agent.expect_nothing(0.5)
    relay.close_clients()
    c = relay.stopped_counters()
    assert c["drop_policy"] == 3 and c["cache_delivered"] == 3, c


def test_pair_bound_connection_takes_only_its_peers_records(start_relay):
    """An agent's UDS connection on a listener standing in for one controller (bound to
    the pair agent/controller) gets only that controller's cached Records; another
    controller's wait for the agent's own connection, and arrive there."""
    from conftest import CTRL_EID
    relay = start_relay(cache={})
    ctrl = relay.stomp_endpoint(CTRL_EID)
    other = relay.stomp_endpoint("self::cache-other-ctrl")
    mine = [w.no_session(AGENT, CTRL_EID, b"mine %d" % i) for i in range(3)]
    theirs = [w.no_session(AGENT, "self::cache-other-ctrl", b"theirs %d" % i) for i in range(3)]
    for a, b in zip(mine, theirs):
        ctrl.send_record(a)
        other.send_record(b)
    other.send_record(w.no_session(AGENT, "self::cache-other-ctrl", b"sync"), receipt="s")
    other.expect_receipt("s")
    ctrl.send_record(w.no_session(AGENT, CTRL_EID, b"sync"), receipt="s")
    ctrl.expect_receipt("s")
    paired = relay.uds_endpoint(AGENT, path=relay.uds_ctrl_path)
    assert recv_all(paired, 4)[:3] == mine
    paired.expect_nothing(0.3)
    own = relay.uds_endpoint(AGENT)
    assert recv_all(own, 4)[:3] == theirs
    own.expect_nothing(0.3)
