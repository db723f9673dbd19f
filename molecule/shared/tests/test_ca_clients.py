"""Unit tests of molecule/shared/ca_clients.py and ca_clients_summary.py against local TLS servers (Python's
http.server behind ssl, certificates made with the openssl command line). No cluster, no Docker:

    nice -n 19 python3 -m pytest -q -p no:cacheprovider molecule/shared/tests
"""
import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.dirname(HERE)
CLIENTS = os.path.join(SHARED, "ca_clients.py")
SUMMARY = os.path.join(SHARED, "ca_clients_summary.py")
sys.path.insert(0, SHARED)

import ca_clients  # noqa: E402
import ca_clients_summary  # noqa: E402


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".crt", "-subj", "/CN=" + ca, "-days", "2",
                cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subj in (("server", "/CN=kube-apiserver"), ("client", "/O=system:masters/CN=kubernetes-admin")):
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", subj, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=d)
    (d / "client.pem").write_text((d / "client.crt").read_text() + (d / "client.key").read_text())
    return d


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        b = self.server.backend
        has_cert = bool(self.connection.getpeercert())
        b.seen.append((self.path, has_cert))
        if self.path == "/readyz":
            return self.reply(200 if b.ready else 500, "ok" if b.ready else "[-]etcd failed", "text/plain")
        if "watch=1" in self.path:
            return self.watch()
        if "limit=500" in self.path:
            return self.reply(200, json.dumps({"kind": "ConfigMapList", "metadata": {"resourceVersion": "100"},
                                               "items": []}))
        if b.mode == "401":
            return self.reply(401, '{"kind":"Status","code":401}')
        if b.mode == "503":
            return self.reply(503, '{"kind":"Status","code":503}')
        if b.mode == "slow":
            time.sleep(2)
        if "cluster-info" in self.path:
            return self.reply(200, '{"data":{"kubeconfig":"x"}}')
        return self.reply(200, '{"kind":"ConfigMapList","items":[]}')

    def watch(self):
        b = self.server.backend
        b.watches += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.chunk(json.dumps({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "101"}}}) + "\n")
        while not b.stopping.is_set():
            try:
                cmd = b.commands.get(timeout=0.05)
            except queue.Empty:
                continue
            if cmd == "close":
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True
                return
            if cmd == "gone":
                self.chunk(json.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410}}) + "\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True
                return
            if cmd.startswith("add:"):
                self.chunk(json.dumps({"type": "ADDED", "object": {"metadata": {"resourceVersion": cmd[4:]}}}) + "\n")
        self.connection.close()
        self.close_connection = True


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        self.RequestHandlerClass(tls, client_address, self)


class Backend:
    """One fake apiserver on 127.0.0.1."""

    def __init__(self, pki, port=0):
        self.pki, self.mode, self.ready, self.watches = pki, "ok", True, 0
        self.seen, self.commands, self.stopping = [], queue.Queue(), threading.Event()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pki / "server.crt"), str(pki / "server.key"))
        ctx.verify_mode = ssl.CERT_OPTIONAL  # as kube-apiserver: a client certificate is asked for, not required
        ctx.load_verify_locations(str(pki / "ca.crt"))
        self.httpd = TLSServer(("127.0.0.1", port), Handler)
        self.httpd.ctx, self.httpd.backend = ctx, self
        self.port = self.httpd.server_address[1]
        self.addr = "127.0.0.1:%d" % self.port
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def lb_paths(self):
        return [(p, c) for p, c in self.seen if "limit=1" in p and "limit=10" not in p]


@pytest.fixture
def backends(pki):
    made = []

    def make(port=0):
        b = Backend(pki, port)
        made.append(b)
        return b

    yield make
    for b in made:
        if not b.stopping.is_set():
            b.stop()


def records(log):
    out = []
    if os.path.exists(log):
        with open(log) as f:
            for line in f:
                if line.strip():
                    out.append(json.loads(line))
    return out


def wait_for(pred, timeout=15.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Run:
    """ca_clients.py run in a child process, fast settings."""

    def __init__(self, tmp, servers, ca, cert, key=None, extra=()):
        self.log, self.phase, self.stopf = str(tmp / "c.jsonl"), str(tmp / "phase"), str(tmp / "stop")
        self.set_phase("one")
        argv = [sys.executable, CLIENTS, "run", "--log", self.log, "--phase-file", self.phase, "--stop-file",
                self.stopf, "--interval", "0.1", "--timeout", "1", "--health-timeout", "0.5", "--ca", str(ca),
                "--cert", str(cert)] + (["--key", str(key)] if key else []) + list(extra) + [",".join(servers)]
        self.proc = subprocess.Popen(argv)

    def set_phase(self, name):
        with open(self.phase + ".tmp", "w") as f:
            f.write(name + "\n")
        os.replace(self.phase + ".tmp", self.phase)

    def recs(self, kind=None):
        return [r for r in records(self.log) if kind is None or r["kind"] == kind]

    def stop(self):
        open(self.stopf, "w").close()
        assert self.proc.wait(timeout=15) == 0
        return self.recs()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def run_clients(tmp_path):
    runs = []

    def start(*a, **kw):
        r = Run(tmp_path, *a, **kw)
        runs.append(r)
        return r

    yield start
    for r in runs:
        r.kill()


def swap(path, content):
    tmp = str(path) + ".new"
    with open(tmp, "w") as f:
        f.write(content)
    os.replace(tmp, str(path))


# --- run ---------------------------------------------------------------------------------------------------------

def test_round_robin_phases_and_clean_stop(pki, backends, run_clients):
    a, b = backends(), backends()
    r = run_clients([a.addr, b.addr], pki / "ca.crt", pki / "client.crt", pki / "client.key")
    wait_for(lambda: len(r.recs("lb")) >= 10, what="10 requests")
    r.set_phase("two")
    wait_for(lambda: len([x for x in r.recs("lb") if x["phase"] == "two"]) >= 6, what="requests in phase two")
    recs = r.stop()
    s = ca_clients_summary.summarize(json.dumps(x) for x in recs)
    assert s["started"] and s["stopped"]
    assert s["phase_order"] == ["one", "two"]
    assert s["total"]["lb_failed"] == 0 and s["total"]["lb_requests"] >= 16
    assert s["phases"]["two"]["lb_requests"] >= 6
    assert {x["server"] for x in recs if x["kind"] == "lb"} == {a.addr, b.addr}
    # the watch opened once, on one server, and never dropped
    assert s["total"]["watch_opens"] == 1 and s["total"]["watch_drops"] == 0
    assert s["total"]["watch_failed_reconnects"] == 0
    # the requests carried the client certificate; the health checks are anonymous
    assert a.lb_paths() and all(c for _, c in a.lb_paths() + b.lb_paths())
    assert all(not c for p, c in a.seen + b.seen if p == "/readyz")
    assert recs[-1]["kind"] == "stop" and recs[-1]["reason"] == "stop-file"
    # no key material in the log
    key_line = (pki / "client.key").read_text().splitlines()[1]
    assert key_line not in open(r.log).read()


def test_ca_file_read_again_for_every_connection(pki, backends, run_clients, tmp_path):
    a = backends()
    ca = tmp_path / "ca-file"
    swap(ca, (pki / "other-ca.crt").read_text())
    r = run_clients([a.addr], ca, pki / "client.pem")  # cert and key in one file
    wait_for(lambda: len(r.recs("lb")) >= 5, what="requests with the wrong CA")
    assert not any(x["ok"] for x in r.recs("lb"))
    # the balancer still saw the apiserver up: its health check does not verify
    assert [x["up"] for x in r.recs("health")] == [True]
    r.set_phase("fixed")
    swap(ca, (pki / "other-ca.crt").read_text() + (pki / "ca.crt").read_text())  # a bundle, as after phase a
    wait_for(lambda: len([x for x in r.recs("lb") if x["phase"] == "fixed" and x["ok"]]) >= 5, what="ok requests")
    wait_for(lambda: r.recs("watch-open"), what="the watch")
    recs = r.stop()
    s = ca_clients_summary.summarize(json.dumps(x) for x in recs)
    assert set(s["phases"]["one"]["lb_failed_causes"]) == {"tls-verify"}
    assert s["phases"]["one"]["lb_ok"] == 0
    assert s["phases"]["one"]["watch_failed_reconnect_causes"].keys() == {"tls-verify"}
    assert s["phases"]["fixed"]["lb_ok"] >= 5
    assert s["total"]["watch_opens"] == 1
    assert s["total"]["outages"] == 1 and s["total"]["longest_outage_s"] > 0


def test_load_balancer_skips_an_apiserver_that_is_not_ready(pki, backends, run_clients):
    a, b = backends(), backends()
    b.ready = False
    r = run_clients([a.addr, b.addr], pki / "ca.crt", pki / "client.crt", pki / "client.key")
    wait_for(lambda: len(r.recs("lb")) >= 10, what="requests")
    b.ready = True
    wait_for(lambda: any(x.get("server") == b.addr for x in r.recs("lb")), what="a request to b once ready")
    recs = r.stop()
    lb = [x for x in recs if x["kind"] == "lb"]
    first_up = next(x["t"] for x in recs if x["kind"] == "health" and x["server"] == b.addr and x["up"])
    assert all(x["server"] == a.addr for x in lb if x["t"] < first_up - 0.01)
    assert all(x["ok"] for x in lb)


def test_watch_drops_reconnects_and_failed_reconnects(pki, backends, run_clients):
    a, b = backends(), backends()
    r = run_clients([a.addr, b.addr], pki / "ca.crt", pki / "client.crt", pki / "client.key")
    first = wait_for(lambda: r.recs("watch-open"), what="the watch")[0]
    assert first["reconnect"] is False and first["rv"] == "100"
    on = {a.addr: a, b.addr: b}
    on[first["server"]].commands.put("add:150")
    on[first["server"]].commands.put("close")
    second = wait_for(lambda: r.recs("watch-open")[1:], what="the reconnect")[0]
    # on the other apiserver, from the last resourceVersion seen
    assert second["reconnect"] is True and second["server"] != first["server"] and second["rv"] == "150"
    on[second["server"]].commands.put("gone")
    third = wait_for(lambda: r.recs("watch-open")[2:], what="the relist after 410")[0]
    assert third["rv"] == "100"  # listed again
    # both apiservers go away: the watch drops and reconnecting fails until one is back on its port
    r.set_phase("down")
    port_a = a.port
    a.stop()
    b.stop()
    wait_for(lambda: len(r.recs("watch-reconnect-failed")) >= 3, what="failed reconnects")
    r.set_phase("back")
    backends(port_a)
    wait_for(lambda: [x for x in r.recs("watch-open") if x["phase"] == "back"], what="the watch back")
    recs = r.stop()
    s = ca_clients_summary.summarize(json.dumps(x) for x in recs)
    drops = s["total"]["watch_drop_causes"]
    assert drops.get("closed", 0) >= 1 and drops.get("gone-410") == 1
    assert s["phases"]["down"]["watch_failed_reconnects"] >= 3
    # failed because no apiserver was there: refused or none up; a reconnect that b accepted in the moment it was
    # stopping ends reset or closed (CI saw 'reset' once). Never a TLS or status cause: the certificates are fine
    causes = set(s["phases"]["down"]["watch_failed_reconnect_causes"])
    assert causes <= {"connect", "no-backend", "reset", "closed"} and causes & {"connect", "no-backend"}
    assert s["phases"]["down"]["lb_failed"] > 0
    assert s["phases"]["back"]["watch_opens"] == 1
    reopened = [x for x in recs if x["kind"] == "watch-open" and x["phase"] == "back"][0]
    assert reopened["down_s"] > 0


def test_max_seconds_and_sigterm(pki, backends, run_clients, tmp_path):
    a = backends()
    r = run_clients([a.addr], pki / "ca.crt", pki / "client.crt", pki / "client.key", extra=["--max-seconds", "1"])
    assert r.proc.wait(timeout=15) == 0
    assert r.recs()[-1] == dict(r.recs()[-1], kind="stop", reason="max-seconds")
    os.unlink(r.log)
    r2 = run_clients([a.addr], pki / "ca.crt", pki / "client.crt", pki / "client.key")
    wait_for(lambda: r2.recs("lb"), what="a request")
    r2.proc.send_signal(signal.SIGTERM)
    assert r2.proc.wait(timeout=15) == 0
    assert r2.recs()[-1]["reason"] == "signal"


# --- the balancer's choice, in the process ----------------------------------------------------------------------

class Args:
    def __init__(self, log, servers, pki, **kw):
        self.log, self.phase_file, self.stop_file = log, log + ".phase", log + ".stop"
        self.servers, self.ca, self.cert, self.key = ",".join(servers), str(pki / "ca.crt"), str(pki / "client.pem"), None
        self.interval, self.timeout, self.health_timeout, self.max_seconds = 0.1, 1.0, 0.5, 10
        self.no_redispatch = False
        self.__dict__.update(kw)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "127.0.0.1:%d" % port


@pytest.mark.parametrize("no_redispatch", [False, True])
def test_refused_connection_is_redispatched_like_an_l4_balancer(pki, backends, tmp_path, no_redispatch):
    a, dead = backends(), closed_port()
    log = str(tmp_path / "lb.jsonl")
    c = ca_clients.Clients(Args(log, [dead, a.addr], pki, no_redispatch=no_redispatch))
    c.up = {dead: True, a.addr: True}  # the balancer still believes the dead one up (its check is 0.5 s old)
    c.rr = 0
    c.lb_once(time.time(), "x")
    rec = records(log)[-1]
    if no_redispatch:
        assert rec["ok"] is False and rec["cause"] == "connect" and rec["server"] == dead
    else:
        assert rec["ok"] is True and rec["server"] == a.addr and rec["redispatched"] == [dead]
    # nothing up at all: no backend
    c.up = {dead: False, a.addr: False}
    c.lb_once(time.time(), "x")
    assert records(log)[-1]["cause"] == "no-backend"
    # every one up refuses: the last refusal is the cause
    c.up = {dead: True, a.addr: False}
    c.lb_once(time.time(), "x")
    assert records(log)[-1]["cause"] == "connect"


def test_statuses_and_timeout_are_causes(pki, backends, tmp_path):
    a = backends()
    log = str(tmp_path / "st.jsonl")
    c = ca_clients.Clients(Args(log, [a.addr], pki))
    c.up = {a.addr: True}
    for mode, cause, status in (("401", "401", 401), ("503", "5xx", 503), ("slow", "timeout", None)):
        a.mode = mode
        c.lb_once(time.time(), mode)
        rec = records(log)[-1]
        assert (rec["ok"], rec["cause"], rec.get("status")) == (False, cause, status), rec
    a.mode = "ok"
    c.lb_once(time.time(), "ok")
    assert records(log)[-1]["ok"] is True


def test_client_config_errors_are_failures_not_crashes(pki, backends, tmp_path):
    a = backends()
    log = str(tmp_path / "cfg.jsonl")
    c = ca_clients.Clients(Args(log, [a.addr], pki, cert=str(pki / "client.crt"), key=str(pki / "server.key")))
    c.up = {a.addr: True}
    c.lb_once(time.time(), "x")
    assert records(log)[-1]["cause"] == "client-config"


# --- once ---------------------------------------------------------------------------------------------------------

def once(*args):
    out = subprocess.run([sys.executable, CLIENTS, "once"] + [str(x) for x in args], check=True,
                         stdout=subprocess.PIPE).stdout
    return json.loads(out)


def test_once(pki, backends):
    a = backends()
    path = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
    got = once("--ca", pki / "ca.crt", "--cert", pki / "client.crt", "--key", pki / "client.key", a.addr, path)
    assert got["ok"] and got["status"] == 200 and json.loads(got["body"])["data"]["kubeconfig"] == "x"
    assert once("--ca", pki / "ca.crt", a.addr, path)["ok"]  # anonymous
    got = once("--ca", pki / "other-ca.crt", "--cert", pki / "client.pem", a.addr, path)
    assert (got["ok"], got["cause"]) == (False, "tls-verify")
    a.mode = "401"
    got = once("--ca", pki / "ca.crt", "--cert", pki / "client.pem", a.addr, "/api/v1/namespaces/x/configmaps?limit=1")
    assert (got["ok"], got["status"], got["cause"]) == (False, 401, "401")
    got = once("--ca", pki / "ca.crt", "--timeout", "1", closed_port(), "/")
    assert (got["ok"], got["cause"]) == (False, "connect")


# --- summary ------------------------------------------------------------------------------------------------------

def lines(*recs):
    return [json.dumps(r) for r in recs]


def test_summary_counts_outages_and_window(tmp_path):
    log = lines(
        {"t": 0.0, "phase": "", "kind": "start"},
        {"t": 1.0, "phase": "a", "kind": "lb", "ok": True, "server": "s1", "ms": 5},
        {"t": 1.5, "phase": "a", "kind": "lb", "ok": False, "cause": "connect", "server": "s2", "ms": 1},
        {"t": 2.0, "phase": "b", "kind": "lb", "ok": False, "cause": "timeout", "server": "s2", "ms": 5000},
        {"t": 2.5, "phase": "b", "kind": "lb", "ok": True, "server": "s1", "ms": 5, "redispatched": ["s3"]},
        {"t": 2.6, "phase": "b", "kind": "watch-drop", "cause": "closed", "server": "s1"},
        {"t": 2.7, "phase": "b", "kind": "watch-reconnect-failed", "cause": "connect", "server": "s2"},
        {"t": 2.9, "phase": "b", "kind": "watch-open", "server": "s3", "reconnect": True},
        {"t": 3.0, "phase": "b", "kind": "health", "server": "s2", "up": False},
        {"t": 4.0, "phase": "c", "kind": "lb", "ok": False, "cause": "401", "server": "s1", "ms": 10},
        {"t": 4.5, "phase": "c", "kind": "lb", "ok": False, "cause": "401", "server": "s1", "ms": 20},
        {"t": 9.0, "phase": "c", "kind": "stop", "reason": "stop-file"},
    ) + ["{cut short"]
    s = ca_clients_summary.summarize(log)
    assert s["phase_order"] == ["", "a", "b", "c"]
    assert s["started"] and s["stopped"] and s["span"] == [0.0, 9.0]
    a, b, c, t = s["phases"]["a"], s["phases"]["b"], s["phases"]["c"], s["total"]
    assert (a["lb_requests"], a["lb_failed"], a["lb_failed_causes"]) == (2, 1, {"connect": 1})
    # the outage began in a (1.5) and lasted until the next ok request was sent (2.5)
    assert (a["outages"], a["longest_outage_s"]) == (1, 1.0)
    assert (b["outages"], b["lb_failed"], b["lb_redispatched"]) == (0, 1, 1)
    assert (b["watch_drops"], b["watch_failed_reconnects"], b["watch_opens"]) == (1, 1, 1)
    assert b["health_changes"] == {"s2": 1}
    # no ok after the last run: it lasted until its last failure ended (4.5 + 0.02)
    assert (c["outages"], c["longest_outage_s"], c["lb_failed_causes"]) == (1, 0.52, {"401": 2})
    assert (t["lb_requests"], t["lb_failed"], t["outages"], t["longest_outage_s"]) == (6, 4, 2, 1.0)
    assert [f["cause"] for f in t["failures"]] == ["connect", "timeout", "401", "401"]
    # a window
    w = ca_clients_summary.summarize(log, 2.0, 4.0)
    assert w["phase_order"] == ["b"] and w["total"]["lb_requests"] == 2 and not w["started"]
    # the command line
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(log) + "\n")
    out = subprocess.run([sys.executable, SUMMARY, str(p), "4", "10"], check=True, stdout=subprocess.PIPE).stdout
    assert json.loads(out)["phase_order"] == ["c"]
    assert subprocess.run([sys.executable, SUMMARY], stderr=subprocess.DEVNULL).returncode == 2


def test_summary_of_nothing():
    s = ca_clients_summary.summarize([])
    assert s["span"] is None and s["total"]["lb_requests"] == 0 and s["phases"] == {}
