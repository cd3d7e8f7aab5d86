"""testclient.py — usp-testclient (tests/tools/usp-testclient.c) as a process the
integration tests start, read and check; the `client` fixture in conftest.py starts them."""

import re
import subprocess
import threading

RECV_RE = re.compile(r"^recv n=(\d+) from=(\S+) to=(\S+) type=(\S+) len=(\d+) seq=(\S+)$")
SUMMARY_RE = re.compile(r"^summary sent=(\d+) received=(\d+)$")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")


class Client:
    """One usp-testclient process; stdout lines are collected by a thread."""

    def __init__(self, exe, args, err_path, wait_stdin=False):
        self.args = [str(exe)] + [str(a) for a in args]
        if wait_stdin:
            self.args.append("--wait-stdin")
        self.err_path = err_path
        self._err = open(err_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._err,
                                     stdin=subprocess.PIPE if wait_stdin else subprocess.DEVNULL)
        self.lines = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if line.startswith("ready "):
                self.ready.set()

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def describe(self):
        return "%s\nrc=%s\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.args), self.proc.poll(), "\n".join(self.lines[-20:]), self.stderr())

    def wait_ready(self, timeout=10.0):
        """Wait for the "ready ..." line and return it."""
        assert self.ready.wait(timeout), "client never ready:\n" + self.describe()
        return next(l for l in self.lines if l.startswith("ready "))

    def go(self):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()

    def finish(self, timeout=60.0):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("client did not exit:\n" + self.describe())
        self._reader.join(5)
        self._err.close()
        return rc

    def recvs(self):
        return [RECV_RE.match(l).groups() for l in self.lines if l.startswith("recv ")]

    def summary(self):
        m = [SUMMARY_RE.match(l) for l in self.lines if l.startswith("summary ")]
        assert len(m) == 1 and m[0], "no summary line:\n" + self.describe()
        return int(m[0].group(1)), int(m[0].group(2))

    def expect_ok(self, sent, received, timeout=60.0):
        """Exit status 0 and the summary line says SENT and RECEIVED."""
        rc = self.finish(timeout)
        assert rc == 0, self.describe()
        assert self.summary() == (sent, received), self.describe()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self._err.closed:
            self._err.close()
