#!/usr/bin/env python3
"""Two clients of the cluster's API that live through a CA renewal or rotation (issue 20), run on the probe host
(outside the cluster) in the background, logging every outcome as one JSON line:

  ca_clients.py run --log LOG --phase-file FILE --stop-file FILE --ca CA_FILE --cert CERT [--key KEY]
                    [--max-seconds 3600] [--interval 0.5] [--timeout 5] [--health-timeout 2] [--no-redispatch]
                    HOST:PORT[,HOST:PORT...]
  ca_clients.py once --ca CA_FILE [--cert CERT [--key KEY]] [--timeout 5] HOST:PORT PATH

run starts three kinds of threads:
  health  one per apiserver: every INTERVAL an anonymous GET /readyz (the serving certificate not verified: a load
          balancer has no stake in what the clients trust); an apiserver is "up" while its last completed check
          answered 200 "ok" within HEALTH_TIMEOUT. Changes are logged ({"kind": "health", "server", "up"}).
  lb      every INTERVAL one request, GET /api/v1/namespaces/kube-system/configmaps?limit=1, on a new connection to
          one apiserver chosen as a load balancer would: round robin among those up. Logged per request
          ({"kind": "lb", "t" (when sent), "server", "ok", "cause", "status", "ms"}); a request failed when no
          apiserver was up (cause no-backend), on connecting (connect), on the TLS handshake (tls-verify: the
          server's certificate against CA_FILE; tls: anything else, such as an alert from the server), on a
          status (401, 403, 5xx, http-NNN), or on taking longer than TIMEOUT in all (timeout). A refused TCP
          connection is sent on to the next apiserver that is up, as an L4 load balancer (HAProxy's retries with
          option redispatch, nginx's proxy_next_upstream error) does: nothing was sent yet; the request then
          carries "redispatched": [the servers that refused] (--no-redispatch: it fails instead).
  watch   one watch of kube-system's ConfigMaps (a list for the resourceVersion, then GET ...?watch=1&
          allowWatchBookmarks=true&timeoutSeconds=3600), kept open; when it ends it is opened again from the last
          resourceVersion (listed again after 410 Gone) on the next apiserver that is up (round robin, the one it
          was on last only if no other is up), as a reflector through a load balancer would. Logged: watch-open
          (server, reconnect, down_s), watch-drop (server, cause, open_s, events), watch-reconnect-failed (server,
          cause; another attempt follows after INTERVAL).
The clients' TLS context is made anew for every connection: CA_FILE, CERT and KEY are read again each time, so a
test may replace them (rename a new file into place: KEY may be left out when CERT holds the key too, which makes
swapping the pair atomic). The server's certificate is verified against CA_FILE, its IP or name too.
Every line carries "t" (epoch seconds) and "phase": the content of PHASE_FILE when it was written (empty when
absent), so a test marks its phases by writing their names there. Stops once STOP_FILE exists, after MAX_SECONDS,
or on SIGTERM/SIGINT ({"kind": "stop", "reason"}). Prints no key material.

once makes one such request (no load balancer, no retry) and prints one JSON object: server, path, ok, status,
cause, error, body (the text, cut at 64 KiB). Python 3 standard library only.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time

LB_PATH = "/api/v1/namespaces/kube-system/configmaps?limit=1"
LIST_PATH = "/api/v1/namespaces/kube-system/configmaps?limit=500"
WATCH_PATH = "/api/v1/namespaces/kube-system/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s"
WATCH_SECONDS = 3600
HEADERS = {"Accept": "application/json", "User-Agent": "ca-clients/1 (kubeadm-certs molecule)"}


class Failure(Exception):
    """A request that failed, with the cause the log names."""

    def __init__(self, cause, detail="", server=None, status=None):
        super().__init__(cause)
        self.cause, self.detail, self.server, self.status, self.tried = cause, str(detail)[:300], server, status, []


def split(server):
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


def cause_of(exc):
    """The log's cause for an exception raised while talking to a server."""
    if isinstance(exc, Failure):
        return exc.cause
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls-verify"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionAbortedError, BrokenPipeError,
                        http.client.IncompleteRead)):
        return "closed"
    if isinstance(exc, http.client.HTTPException):
        return "bad-response"
    if isinstance(exc, OSError):
        return "io"
    return "error"


def status_cause(status):
    if status == 401:
        return "401"
    if status == 403:
        return "403"
    if 500 <= status < 600:
        return "5xx"
    return "http-%d" % status


def client_context(ca, cert, key):
    """A new TLS context from the files as they are now (the test may have replaced them)."""
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = True
        ctx.load_verify_locations(cafile=ca)
        if cert:
            ctx.load_cert_chain(cert, key or None)
        return ctx
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        raise Failure("client-config", "%s: %s" % (type(e).__name__, e))


def health_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def remaining(deadline):
    left = deadline - time.time()
    if left <= 0:
        raise Failure("timeout", "no time left")
    return left


def keepalive(sock):
    """Notice a peer that vanished under an idle watch within about half a minute."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def get(server, path, ctx, deadline):
    """GET over a new TLS connection: (connection, response) with the headers read, or Failure."""
    host, port = split(server)
    try:
        sock = socket.create_connection((host, port), timeout=remaining(deadline))
    except Failure:
        raise
    except (socket.timeout, TimeoutError) as e:
        raise Failure("timeout", "connect: %s" % e, server)
    except OSError as e:
        raise Failure("connect", e, server)
    try:
        keepalive(sock)
        tls = ctx.wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=remaining(deadline))
        conn.sock = tls
        tls.settimeout(remaining(deadline))
        conn.request("GET", path, headers=HEADERS)
        tls.settimeout(remaining(deadline))
        resp = conn.getresponse()
        return conn, resp
    except Failure as f:
        sock.close()
        f.server = server
        raise
    except Exception as e:  # every way a request can fail is a logged cause, never a dead thread
        sock.close()
        raise Failure(cause_of(e), "%s: %s" % (type(e).__name__, e), server)


def get_body(server, path, ctx, deadline):
    """(status, body text) of a whole GET; a status other than 200 is a Failure."""
    conn, resp = get(server, path, ctx, deadline)
    try:
        conn.sock.settimeout(remaining(deadline))
        body = resp.read(1 << 20)
    except Failure as f:
        f.server = server
        raise
    except Exception as e:
        raise Failure(cause_of(e), "%s: %s" % (type(e).__name__, e), server)
    finally:
        conn.close()
    if resp.status != 200:
        raise Failure(status_cause(resp.status), body[:200].decode("utf-8", "replace"), server, resp.status)
    return resp.status, body.decode("utf-8", "replace")


class Log:
    def __init__(self, path, phase_file):
        self.lock = threading.Lock()
        self.phase_file = phase_file
        self.f = open(path, "a", buffering=1)

    def phase(self):
        try:
            with open(self.phase_file) as f:
                return f.read().strip()
        except OSError:
            return ""

    def write(self, kind, t=None, phase=None, **fields):
        rec = {"t": round(time.time() if t is None else t, 3), "phase": self.phase() if phase is None else phase,
               "kind": kind}
        rec.update(fields)
        line = json.dumps(rec, sort_keys=True)
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()


class Clients:
    def __init__(self, a):
        self.a = a
        self.servers = [s.strip() for s in a.servers.split(",") if s.strip()]
        self.up = {s: False for s in self.servers}
        self.checked = {s: threading.Event() for s in self.servers}
        self.lock = threading.Lock()
        self.rr = 0
        self.stop = threading.Event()
        self.log = Log(a.log, a.phase_file)
        self.inflight = []

    # the load balancer: round robin among the apiservers up
    def pick(self, exclude=(), avoid=None):
        with self.lock:
            up = [s for s in self.servers if self.up[s] and s not in exclude]
            preferred = [s for s in up if s != avoid] or up
            if not preferred:
                return None
            server = preferred[self.rr % len(preferred)]
            self.rr += 1
            return server

    def through_lb(self, attempt, avoid=None):
        """attempt(server) on the server the balancer picks; a refused connection goes on to the next one up."""
        tried, last = [], None
        server = self.pick(avoid=avoid)
        while True:
            if server is None:
                if last is not None:
                    last.tried = tried[:-1]
                    raise last
                raise Failure("no-backend", "no apiserver up" + (" (refused: %s)" % tried if tried else ""))
            try:
                return server, tried, attempt(server)
            except Failure as f:
                f.server = server
                if f.cause != "connect" or self.a.no_redispatch:
                    f.tried = tried
                    raise
                tried.append(server)
                last = f
                server = self.pick(exclude=tried)

    def ctx(self):
        return client_context(self.a.ca, self.a.cert, self.a.key)

    # health checks
    def health(self, server):
        ctx = health_context()
        while not self.stop.is_set():
            began = time.time()
            try:
                status, body = get_body(server, "/readyz", ctx, began + self.a.health_timeout)
                ok, detail = body.strip() == "ok", body.strip()[:100]
            except Failure as f:
                ok, detail = False, "%s: %s" % (f.cause, f.detail)
            with self.lock:
                changed = self.up[server] != ok or not self.checked[server].is_set()
                self.up[server] = ok
            if changed:
                self.log.write("health", server=server, up=ok, detail=detail)
            self.checked[server].set()
            self.stop.wait(max(0.0, began + self.a.interval - time.time()))

    # the load balancer's requests
    def lb_once(self, sent, phase):
        rec = {}
        try:
            server, tried, _ = self.through_lb(lambda s: get_body(s, LB_PATH, self.ctx(), sent + self.a.timeout))
            rec.update(server=server, ok=True, status=200)
        except Failure as f:
            tried = f.tried
            rec.update(server=f.server, ok=False, cause=f.cause, error=f.detail, status=f.status)
        if tried:
            rec["redispatched"] = tried
        self.log.write("lb", t=sent, phase=phase, ms=int((time.time() - sent) * 1000), **rec)

    def lb(self):
        due = time.time()
        while not self.stop.is_set():
            now = time.time()
            if now < due:
                self.stop.wait(due - now)
                continue
            th = threading.Thread(target=self.lb_once, args=(now, self.log.phase()), daemon=True)
            th.start()
            self.inflight = [t for t in self.inflight if t.is_alive()] + [th]
            due += self.a.interval
            if due < now:  # the machine stalled: go on from now rather than firing a burst
                due = now + self.a.interval

    # the watch
    def list_rv(self, server, deadline):
        _, body = get_body(server, LIST_PATH, self.ctx(), deadline)
        try:
            return json.loads(body)["metadata"]["resourceVersion"]
        except (ValueError, KeyError, TypeError) as e:
            raise Failure("bad-response", "list: %s" % e, server)

    def open_watch(self, server, state):
        deadline = time.time() + self.a.timeout
        if state["rv"] is None:
            state["rv"] = self.list_rv(server, deadline)
        conn, resp = get(server, WATCH_PATH % (WATCH_SECONDS, state["rv"]), self.ctx(), deadline)
        if resp.status != 200:
            try:
                body = resp.read(4096).decode("utf-8", "replace")
            except Exception:  # the status says enough
                body = ""
            conn.close()
            if resp.status == 410:
                state["rv"] = None
            raise Failure(status_cause(resp.status), body[:200], server, resp.status)
        conn.sock.settimeout(None)  # an idle watch is fine; keepalive notices a vanished peer
        return conn, resp

    def read_watch(self, resp, state):
        """Reads events until the stream ends: (cause, events)."""
        events = 0
        while True:
            try:
                line = resp.readline()
            except Exception as e:
                return cause_of(e), events
            if not line:
                return "closed", events
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
                obj = ev.get("object") or {}
            except ValueError:
                return "bad-event", events
            events += 1
            if ev.get("type") == "ERROR":
                code = obj.get("code")
                if code == 410:
                    state["rv"] = None
                    return "gone-410", events
                return "error-%s" % code, events
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                state["rv"] = rv

    def watch(self):
        state = {"rv": None}
        last, dropped_at, first = None, None, True
        while not self.stop.is_set():
            try:
                server, tried, (conn, resp) = self.through_lb(lambda s: self.open_watch(s, state), avoid=last)
            except Failure as f:
                rec = {"server": f.server, "cause": f.cause, "error": f.detail, "initial": first}
                if f.tried:
                    rec["redispatched"] = f.tried
                self.log.write("watch-reconnect-failed", **rec)
                self.stop.wait(self.a.interval)
                continue
            opened = time.time()
            rec = {"server": server, "rv": state["rv"], "reconnect": not first}
            if dropped_at is not None:
                rec["down_s"] = round(opened - dropped_at, 3)
            if tried:
                rec["redispatched"] = tried
            self.log.write("watch-open", **rec)
            first = False
            cause, events = self.read_watch(resp, state)
            conn.close()
            dropped_at = time.time()
            if cause == "closed" and dropped_at - opened >= WATCH_SECONDS - 5:
                cause = "server-timeout"
            if self.stop.is_set():
                return
            self.log.write("watch-drop", server=server, cause=cause, open_s=round(dropped_at - opened, 3),
                           events=events)
            last = server

    def run(self):
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        try:
            os.unlink(self.a.stop_file)
        except OSError:
            pass
        self.log.write("start", servers=self.servers, pid=os.getpid(), interval=self.a.interval,
                       timeout=self.a.timeout, redispatch=not self.a.no_redispatch)
        began = time.time()
        for s in self.servers:
            threading.Thread(target=self.health, args=(s,), daemon=True).start()
        # the balancer starts once every apiserver has been checked once (else its first requests find none up)
        for s in self.servers:
            self.checked[s].wait(self.a.health_timeout + 2 * self.a.interval)
        threading.Thread(target=self.lb, daemon=True).start()
        threading.Thread(target=self.watch, daemon=True).start()
        reason = "signal"
        while not self.stop.is_set():
            if os.path.exists(self.a.stop_file):
                reason = "stop-file"
                break
            if time.time() - began >= self.a.max_seconds:
                reason = "max-seconds"
                break
            self.stop.wait(0.2)
        self.stop.set()
        for th in list(self.inflight):  # the requests under way are logged, each ends within TIMEOUT
            th.join(self.a.timeout + 1)
        self.log.write("stop", reason=reason)
        self.log.f.close()
        # the watch thread may sit in a read: leave without waiting for it
        os._exit(0)


def once(a):
    out = {"server": a.server, "path": a.path, "ok": False, "status": None, "cause": None, "error": None, "body": None}
    try:
        ctx = client_context(a.ca, a.cert, a.key)
        conn, resp = get(a.server, a.path, ctx, time.time() + a.timeout)
        try:
            body = resp.read(1 << 16)
        finally:
            conn.close()
        out.update(status=resp.status, ok=resp.status == 200, body=body.decode("utf-8", "replace"))
        if resp.status != 200:
            out["cause"] = status_cause(resp.status)
    except Failure as f:
        out.update(cause=f.cause, error=f.detail)
    except Exception as e:
        out.update(cause=cause_of(e), error="%s: %s" % (type(e).__name__, e))
    print(json.dumps(out, sort_keys=True))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--log", required=True)
    r.add_argument("--phase-file", required=True)
    r.add_argument("--stop-file", required=True)
    r.add_argument("--max-seconds", type=float, default=3600)
    r.add_argument("--interval", type=float, default=0.5)
    r.add_argument("--timeout", type=float, default=5)
    r.add_argument("--health-timeout", type=float, default=2)
    r.add_argument("--no-redispatch", action="store_true")
    o = sub.add_parser("once")
    o.add_argument("--timeout", type=float, default=5)
    for q in (r, o):
        q.add_argument("--ca", required=True)
        q.add_argument("--cert")
        q.add_argument("--key")
    r.add_argument("servers")
    o.add_argument("server")
    o.add_argument("path")
    a = p.parse_args(argv)
    if a.command == "once":
        return once(a)
    Clients(a).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
