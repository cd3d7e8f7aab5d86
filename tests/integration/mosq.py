"""mosquitto-clients (mosquitto_sub / mosquitto_pub, Debian 2.0.11) as USP endpoints of
a relay, plain or over TLS: shared by the tests that drive third-party MQTT clients.

mosquitto_pub and mosquitto_sub are separate connections: a second connection naming the
same endpoint takes it over, so a mosquitto endpoint receives (mosquitto_sub -C n, which
then exits) and only afterwards sends (mosquitto_pub)."""

import os
import queue
import shutil
import subprocess
import threading

import pytest

import uspwire as w

WAIT = 10.0
MARK = "REC|"

needs_mosquitto = pytest.mark.skipif(not shutil.which("mosquitto_sub"),
                                     reason="mosquitto-clients not installed")


def plain_args(relay):
    return ["-h", "127.0.0.1", "-p", str(relay.mqtt_port)]


def tls_args(relay, pki, cert, listener="mqtts"):
    """Connect to LISTENER over TLS trusting the test CA, presenting CERT (None: no
    certificate)."""
    args = ["-h", "127.0.0.1", "-p", str(relay.port_of(listener)), "--cafile", pki.ca]
    if cert:
        args += ["--cert", pki.cert(cert), "--key", pki.key(cert)]
    return args


def reply_topic_of(topic, props_response_topic, v5):
    """Where the sender of a received PUBLISH wants answers: v5 Response Topic, 3.1.1 the
    text after the last /reply-to= with %2F -> / (R-MQTT.25/26)."""
    if v5:
        return props_response_topic
    assert "/reply-to=" in topic, topic
    return topic.rsplit("/reply-to=", 1)[1].replace("%2F", "/")


class MosqSub:
    """mosquitto_sub as endpoint EID, receiving COUNT messages then exiting. v5: its
    topic usp/endpoint/<EID> (what CONNACK subscribe-topic says), the ID in the CONNECT
    user property; 3.1.1: client id = EID, "<topic>/#". CONN: connection arguments
    (default: the relay's plain MQTT listener)."""

    def __init__(self, relay, eid, count, *, v5=True, topic=None, qos=1, conn=None):
        self.eid, self.v5, self.count = eid, v5, count
        self.topic = topic or (w.mqtt_topic(eid) if v5 else "usp/agents/" + eid)
        filt = self.topic if v5 else self.topic + "/#"
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-d"] + (conn or plain_args(relay)) + [
            "-V", "mqttv5" if v5 else "mqttv311",
            "-i", eid if not v5 else "mosq-sub-" + eid.replace(":", "-"),
            "-t", filt, "-q", str(qos), "-C", str(count), "-W", str(int(WAIT) + 5),
            "-F", MARK + "%t|%q|%R|%C|%x"]
        if v5:
            cmd += ["-D", "CONNECT", "user-property", "usp-endpoint-id", eid]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.lines = queue.Queue()
        self.debug = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        relay.track(self)
        # Subscribed once the SUBACK is in (the relay processes SUBSCRIBE in order).
        while True:
            line = self.lines.get(timeout=WAIT)
            assert line is not None, "mosquitto_sub ended early: %s" % "".join(self.debug)
            if "received SUBACK" in line:
                break

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            if not line.startswith(MARK):
                self.debug.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def recv(self, timeout=WAIT):
        """(topic, qos, reply topic, content type, payload) of the next message."""
        while True:
            line = self.lines.get(timeout=timeout)
            assert line is not None, "mosquitto_sub ended: %s" % "".join(self.debug[-20:])
            if line.startswith(MARK):
                topic, qos, rt, ct, hexp = line[len(MARK):].rstrip("\n").split("|")
                return (topic, int(qos), reply_topic_of(topic, rt, self.v5), ct,
                        bytes.fromhex(hexp))

    def wait(self):
        """mosquitto_sub has received its COUNT messages and exited cleanly."""
        rc = self.proc.wait(WAIT)
        assert rc == 0, "mosquitto_sub rc=%d: %s" % (rc, "".join(self.debug[-20:]))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def mosq_pub(relay, tmp_path, eid, topic, record, *, v5=True, reply_to=None, qos=1,
             conn=None, check=True):
    """mosquitto_pub RECORD (from a file: binary-safe) to TOPIC as endpoint EID with
    REPLY_TO as v5 Response Topic (+ Content Type usp.msg) or 3.1.1 /reply-to= suffix.
    CHECK: assert it succeeded. Returns the CompletedProcess (text output)."""
    f = tmp_path / ("rec-%d.bin" % len(os.listdir(tmp_path)))
    f.write_bytes(record)
    if not v5 and reply_to:
        topic += w.reply_to_suffix(reply_to)
    cmd = ["mosquitto_pub"] + (conn or plain_args(relay)) + [
        "-V", "mqttv5" if v5 else "mqttv311", "-t", topic, "-f", str(f), "-q", str(qos)]
    if v5:
        # An empty -i is refused by mosquitto_pub: it picks its own client id.
        cmd += ["-D", "CONNECT", "user-property", "usp-endpoint-id", eid,
                "-D", "PUBLISH", "content-type", "usp.msg"]
        if reply_to:
            cmd += ["-D", "PUBLISH", "response-topic", reply_to]
    else:
        cmd += ["-i", eid]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT)
    if check:
        assert p.returncode == 0, "mosquitto_pub rc=%d: %s %s" % (p.returncode, p.stdout,
                                                                 p.stderr)
    return p
