"""Many endpoints at once on a multi-worker relay (architecture §3): 100 STOMP and 100 UDS
endpoints in pairs (STOMP<->UDS, STOMP<->STOMP, UDS<->UDS), each sending K numbered Records
to its peer concurrently; every Record arrives exactly once, unaltered and in order per
sender (spec notes §9 item 8)."""

import re
import threading

import uspwire as w

N_STOMP = 100
N_UDS = 100
K = 100


def test_200_endpoints_exactly_once_in_order(start_relay):
    relay = start_relay(relay={"workers": 3})
    stomps = ["self::s%03d" % i for i in range(N_STOMP)]
    udss = ["self::u%03d" % i for i in range(N_UDS)]
    clients = {}
    for eid in stomps:
        clients[eid] = relay.stomp_endpoint(eid)
        clients[eid].timeout = 30
    for eid in udss:
        clients[eid] = relay.uds_endpoint(eid)
        clients[eid].timeout = 30

    pairs = [(stomps[i], udss[i]) for i in range(50)]
    pairs += [(stomps[i], stomps[i + 1]) for i in range(50, N_STOMP, 2)]
    pairs += [(udss[i], udss[i + 1]) for i in range(50, N_UDS, 2)]
    peer = {}
    for x, y in pairs:
        peer[x], peer[y] = y, x
    assert len(peer) == N_STOMP + N_UDS

    start = threading.Barrier(len(peer) + 1)
    results, errors = {}, []

    def run(eid):
        c, to = clients[eid], peer[eid]
        try:
            recs = [w.no_session(to, eid, b"%s#%d" % (eid.encode(), seq)) for seq in range(K)]
            recs.append(w.no_session(to, eid, b"END"))
            start.wait(30)
            for r in recs:
                c.send_record(r)
            got = []
            while True:
                rec = c.recv_record()
                d = w.decode_record(rec)
                assert (d.to_id, d.from_id) == (eid, to), (eid, d)
                if d.payload == b"END":
                    break
                src, _, seq = d.payload.partition(b"#")
                assert src == to.encode(), (eid, d.payload)
                got.append(int(seq))
            results[eid] = got
        except Exception as e:  # reported below with the endpoint it happened on
            errors.append((eid, repr(e)))
            start.abort()

    threads = [threading.Thread(target=run, args=(eid,), daemon=True) for eid in peer]
    for t in threads:
        t.start()
    start.wait(30)
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "some endpoints never finished"
    assert not errors, errors[:5]
    for eid in peer:
        assert results[eid] == list(range(K)), (eid, results[eid][:20])

    # Nothing more is pending anywhere, and the relay's own counters agree.
    for eid in stomps[:5] + udss[:5]:
        clients[eid].expect_nothing(0.05)
    relay.close_clients()
    assert relay.stop() == 0
    m = re.search(r"event=stopped records_in=(\d+) records_out=(\d+) drop_no_route=(\d+) "
                  r"drop_spoofed=(\d+) drop_malformed=(\d+) drop_queue_full=(\d+)", relay.log())
    assert m, relay.log()[-2000:]
    total = len(peer) * (K + 1)
    assert [int(x) for x in m.groups()] == [total, total, 0, 0, 0, 0]
