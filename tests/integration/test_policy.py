"""The policy group (docs/configuration.md "The policy group", docs/security.md "Policy"):
who may send Records to whom. A refused Record is dropped, counted as drop_policy and
logged once per connection; everything else is relayed as before. Checked across MTPs
(STOMP, MQTT 5 and 3.1.1, UDS, WebSocket), for Connect Records too, with
agents_only_to_controllers, deny rules, default = "deny" and from_id_policy = "log"."""

import subprocess

import pytest

import uspwire as w

CTRL = "self::usp-controller"
CTRL2 = "oui:00256D:ctrl-7"
AGENT1 = "os::00256D-0001"
AGENT2 = "os::00256D-0002"
AGENT_X = "os::0A0B0C-0001"

ONLY_TO_CONTROLLERS = {"controllers": [CTRL, "oui:00256D:ctrl-*"],
                       "agents_only_to_controllers": True}


def dropped(frm, to, mtp=None):
    """The log line of a policy drop of a Record FROM -> TO (sent on MTP)."""
    return (r'event=record_dropped conn=\d+ mtp=%s .*reason=drop_policy to_id="%s" '
            r'from_id="%s"' % (mtp or r"\w+", to, frm))


def passes(sender, receiver, to, frm, payload):
    r = w.no_session(to, frm, payload)
    sender.send_record(r)
    assert receiver.recv_record() == r


def refused(relay, sender, receiver, to, frm, payload, mtp=None):
    """SENDER's Record FROM -> TO is dropped by the policy: the relay logs it, and
    RECEIVER (the connected TO) gets nothing."""
    start = len(relay.log())
    sender.send_record(w.no_session(to, frm, payload))
    relay.wait_log(dropped(frm, to, mtp), start=start)
    receiver.expect_nothing(0.3)


# ----------------------------------------------------------------- agents_only_to_controllers

def test_agent_to_agent_denied_and_counted_once(start_relay):
    relay = start_relay(policy=ONLY_TO_CONTROLLERS)
    a1 = relay.stomp_endpoint(AGENT1)
    a2 = relay.stomp_endpoint(AGENT2)
    ctrl = relay.stomp_endpoint(CTRL)
    refused(relay, a1, a2, AGENT2, AGENT1, b"agent to agent", mtp="stomp")
    relay.wait_log(dropped(AGENT1, AGENT2, "stomp") + " note=first_on_connection")
    # A second refusal on the same connection is counted but not logged again at info;
    # the Record after it shows it was handled (one connection is read in order).
    a1.send_record(w.no_session(AGENT2, AGENT1, b"again"))
    passes(a1, ctrl, CTRL, AGENT1, b"agent to controller")
    assert relay.count_log(r"reason=drop_policy") == 1
    a2.expect_nothing(0.2)
    # The sender stays connected and served: the controller reaches both agents.
    passes(ctrl, a1, AGENT1, CTRL, b"controller to agent 1")
    passes(ctrl, a2, AGENT2, CTRL, b"controller to agent 2")
    # Another connection's refusal is logged at warn level again.
    refused(relay, a2, a1, AGENT1, AGENT2, b"back", mtp="stomp")
    assert relay.count_log(r"reason=drop_policy .*note=first_on_connection") == 2


@pytest.mark.parametrize("agent_kind,other_kind,ctrl_kind", [
    ("stomp", "mqtt5", "mqtt5"),
    ("mqtt5", "stomp", "stomp"),
    ("mqtt4", "uds", "stomp"),
    ("uds", "ws", "mqtt4"),
    ("ws", "mqtt4", "uds"),
])
def test_only_to_controllers_across_mtps(start_relay, agent_kind, other_kind, ctrl_kind):
    relay = start_relay(policy=ONLY_TO_CONTROLLERS)
    agent = relay.endpoint(agent_kind, AGENT1)
    other = relay.endpoint(other_kind, AGENT2)
    ctrl = relay.endpoint(ctrl_kind, CTRL2 if ctrl_kind != "uds" else CTRL)
    ctrl_id = CTRL2 if ctrl_kind != "uds" else CTRL
    refused(relay, agent, other, AGENT2, AGENT1, b"agent to agent",
            mtp={"mqtt5": "mqtt", "mqtt4": "mqtt"}.get(agent_kind, agent_kind))
    passes(agent, ctrl, ctrl_id, AGENT1, b"agent to controller")
    passes(ctrl, agent, AGENT1, ctrl_id, b"controller to agent")
    passes(ctrl, other, AGENT2, ctrl_id, b"controller to the other agent")
    passes(other, ctrl, ctrl_id, AGENT2, b"other agent to controller")


def test_controller_to_controller_allowed(start_relay):
    relay = start_relay(policy=ONLY_TO_CONTROLLERS)
    c1 = relay.mqtt_endpoint(CTRL)
    c2 = relay.stomp_endpoint(CTRL2)
    passes(c1, c2, CTRL2, CTRL, b"c1 to c2")
    passes(c2, c1, CTRL, CTRL2, b"c2 to c1")


def test_connect_records_are_subject_to_policy(start_relay):
    relay = start_relay(policy=ONLY_TO_CONTROLLERS)
    a1 = relay.stomp_endpoint(AGENT1)
    a2 = relay.stomp_endpoint(AGENT2)
    ctrl = relay.stomp_endpoint(CTRL)
    start = len(relay.log())
    a1.send_record(w.stomp_connect(AGENT2, AGENT1, w.endpoint_dest(AGENT1)))
    relay.wait_log(dropped(AGENT1, AGENT2, "stomp"), start=start)
    a2.expect_nothing(0.3)
    c = w.stomp_connect(CTRL, AGENT1, w.endpoint_dest(AGENT1))
    a1.send_record(c)
    assert ctrl.recv_record() == c
    d = w.disconnect(AGENT1, AGENT2, "bye", 7105)
    a2.send_record(d)
    relay.wait_log(dropped(AGENT2, AGENT1, "stomp"))
    a1.expect_nothing(0.2)


# ----------------------------------------------------------------- rules

def test_deny_rule_for_a_prefix(start_relay):
    """The controller may not reach the other vendor's agents; everyone else may."""
    relay = start_relay(policy={"rules": ({"action": "deny", "from": [CTRL],
                                           "to": ["os::0A0B0C-*"]},)})
    ctrl = relay.mqtt_endpoint(CTRL)
    a1 = relay.stomp_endpoint(AGENT1)
    ax = relay.stomp_endpoint(AGENT_X)
    refused(relay, ctrl, ax, AGENT_X, CTRL, b"other vendor", mtp="mqtt")
    passes(ctrl, a1, AGENT1, CTRL, b"own vendor")
    passes(ax, ctrl, CTRL, AGENT_X, b"reply allowed")
    passes(a1, ax, AGENT_X, AGENT1, b"default allow")
    # MQTT QoS 1: the refused PUBLISH is acknowledged with a failure reason.
    ack = ctrl.send_record(w.no_session(AGENT_X, CTRL, b"qos1"), qos=1)
    assert ack.reason == 0x87, ack   # Not authorized
    ax.expect_nothing(0.2)


def test_default_deny_with_allow_rules(start_relay):
    relay = start_relay(policy={
        "default": "deny",
        "rules": ({"action": "allow", "from": [CTRL], "to": ["os::00256D-*"]},
                  {"action": "allow", "from": ["os::*"], "to": [CTRL]}),
    })
    ctrl = relay.stomp_endpoint(CTRL)
    a1 = relay.mqtt_endpoint(AGENT1)
    a2 = relay.mqtt_endpoint(AGENT2, level=4)
    ax = relay.stomp_endpoint(AGENT_X)
    stranger = relay.stomp_endpoint("self::stranger")
    passes(ctrl, a1, AGENT1, CTRL, b"rule 1")
    passes(ctrl, a2, AGENT2, CTRL, b"rule 1, MQTT 3.1.1")
    passes(a1, ctrl, CTRL, AGENT1, b"rule 2")
    passes(ax, ctrl, CTRL, AGENT_X, b"rule 2, other vendor")
    refused(relay, ctrl, ax, AGENT_X, CTRL, b"no rule", mtp="stomp")
    refused(relay, a1, a2, AGENT2, AGENT1, b"agent to agent", mtp="mqtt")
    refused(relay, stranger, ctrl, CTRL, "self::stranger", b"stranger", mtp="stomp")


def test_first_matching_rule_decides(start_relay):
    relay = start_relay(policy={
        "rules": ({"action": "allow", "from": [AGENT1], "to": [AGENT2]},
                  {"action": "deny", "from": ["os::*"], "to": ["os::*"]}),
    })
    a1 = relay.stomp_endpoint(AGENT1)
    a2 = relay.mqtt_endpoint(AGENT2)
    passes(a1, a2, AGENT2, AGENT1, b"allowed by the first rule")
    refused(relay, a2, a1, AGENT1, AGENT2, b"denied by the second", mtp="mqtt")


def test_claimed_from_id_opens_nothing(start_relay):
    """from_id_policy "log" forwards a Record whose from_id is not the sender's; the
    policy then holds the connection's own endpoint to the rules as well."""
    relay = start_relay(relay={"from_id_policy": "log"}, policy=ONLY_TO_CONTROLLERS)
    a1 = relay.stomp_endpoint(AGENT1)
    a2 = relay.stomp_endpoint(AGENT2)
    ctrl = relay.stomp_endpoint(CTRL)
    refused(relay, a1, a2, AGENT2, CTRL, b"posing as the controller", mtp="stomp")
    passes(ctrl, a2, AGENT2, CTRL, b"the real controller")


def test_no_policy_group_allows_all(relay):
    a1 = relay.stomp_endpoint(AGENT1)
    a2 = relay.mqtt_endpoint(AGENT2)
    passes(a1, a2, AGENT2, AGENT1, b"no policy")
    assert relay.count_log(r"drop_policy") == 0


def test_bad_policy_refuses_to_start(make_config, usprelayd):
    path, _ = make_config(policy={"controllers": ["os::a b*"],
                                  "agents_only_to_controllers": "yes"})
    p = subprocess.run([str(usprelayd), "-t", "-c", str(path)], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode != 0
    assert "policy.controllers[0]" in p.stderr, p.stderr
    assert "policy.agents_only_to_controllers: expected true or false" in p.stderr, p.stderr


# ----------------------------------------------------------------- reload

def test_sighup_reloads_policy(start_relay):
    """SIGHUP applies a changed policy to open connections at once; a configuration that
    does not load is refused with its errors logged, and the policy in force stays."""
    import signal
    from pathlib import Path
    from conftest import render_config
    relay = start_relay(policy=ONLY_TO_CONTROLLERS)
    a1 = relay.stomp_endpoint(AGENT1)
    a2 = relay.stomp_endpoint(AGENT2)
    refused(relay, a1, a2, AGENT2, AGENT1, b"before reload")
    sections = relay.info.sections
    sections["policy"] = {"default": "allow"}
    Path(relay.config_path).write_text(render_config(sections))
    relay.send_signal(signal.SIGHUP)
    relay.wait_log(r"event=policy_reloaded rules=0 controllers=0 default=allow")
    passes(a1, a2, AGENT2, AGENT1, b"after reload")
    # A broken file: refused, logged, the last good policy stays.
    sections["policy"] = {"default": "maybe"}
    Path(relay.config_path).write_text(render_config(sections))
    relay.send_signal(signal.SIGHUP)
    relay.wait_log(r"event=reload_refused error=\"[^\n]*policy\.default")
    relay.wait_log(r"event=reload_refused config=[^\n]* action=keep_old")
    passes(a1, a2, AGENT2, AGENT1, b"after a refused reload")


def test_route_by_destination_must_also_be_allowed(start_relay):
    """A Record whose to_id nobody holds goes to whoever subscribed its STOMP destination:
    with agents_only_to_controllers, an agent addressing a made-up controller ID to
    another agent's destination is dropped (drop_policy) at that agent, not delivered."""
    relay = start_relay(policy=ONLY_TO_CONTROLLERS)
    a1 = relay.stomp_endpoint(AGENT1)
    a2 = relay.stomp_endpoint(AGENT2)
    fake = "oui:00256D:ctrl-nonexistent"
    start = len(relay.log())
    a1.send_record(w.no_session(fake, AGENT1, b"via a2's destination"), dest=a2.dest)
    relay.wait_log(r'reason=drop_policy to_id="%s" from_id="%s"' % (fake, AGENT1),
                   start=start)
    a2.expect_nothing(0.3)
    # A controller may still reach an agent that way.
    c = relay.stomp_endpoint(CTRL)
    r = w.no_session("os::00256D-unknown", CTRL, b"to a2's destination")
    c.send_record(r, dest=a2.dest)
    assert a2.recv_record() == r


def test_sighup_warns_about_credentials_it_does_not_reload(start_relay):
    """A reload that changes a listener's login/passcode or adds a password_file says that
    a restart is needed (reload_skipped); the old credentials stay in force."""
    import signal
    from pathlib import Path
    from conftest import render_config
    relay = start_relay(stomp={"login": "dev", "passcode": "old"})
    sections = relay.info.sections
    for lst in sections["listeners"]:
        if lst["name"] == "stomp":
            lst["passcode"] = "new"
    Path(relay.config_path).write_text(render_config(sections))
    relay.send_signal(signal.SIGHUP)
    relay.wait_log(r"event=reload_skipped listener=stomp setting=login/passcode ")
    c = relay.stomp_client()
    c.connect(AGENT1, login="dev", passcode="old")
