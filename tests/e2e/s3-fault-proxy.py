"""A fault-injecting HTTP proxy in front of moto server, for the fault tests.

Forwards every request to UPSTREAM unchanged. While faults are on, every Nth
request is not forwarded and is answered with an S3 error the SDKs retry
(503 SlowDown, then 500 InternalError, alternately), or, every third fault,
forwarded and then the connection is dropped before the answer (the request
may have taken effect: the nastiest case for a client).

  python3 s3-fault-proxy.py PORT UPSTREAM [RECORD]
  POST /__faults {"every": N}   turn faults on (N > 0) or off (0); answers
                                how many requests and faults so far
  POST /__faults {"every": 0, "delay": {"target": T, "seconds": S}}
                                also hold the answer to every request whose
                                X-Amz-Target is T for S seconds after the
                                upstream gave it (requests sent together are
                                all answered as of before any of them comes
                                back: a race made certain); a POST without
                                "delay" ends it

With RECORD, every forwarded request is appended to that file as a JSON
line: the caller's access key, method, path, the headers that decide the
IAM action (X-Amz-Target, x-amz-copy-source, x-amz-tagging), and the
status the upstream answered (see tests/e2e/iam_roles.py `used`).
"""
import http.client
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

PORT, UPSTREAM = int(sys.argv[1]), urlsplit(sys.argv[2])
RECORD = sys.argv[3] if len(sys.argv) > 3 else None
state = {"every": 0, "requests": 0, "faults": 0, "delay": None}
lock = threading.Lock()

ERROR = """<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>{code}</Code><Message>injected by s3-fault-proxy</Message><RequestId>fault</RequestId></Error>"""


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            return self.rfile.read(n)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        body = self._body()
        if self.path == "/__faults":
            with lock:
                control = json.loads(body or b"{}")
                state["every"] = int(control.get("every", 0))
                state["delay"] = control.get("delay")
                snapshot = dict(state)
            return self._reply(200, json.dumps(snapshot).encode(), [("Content-Type", "application/json")])
        with lock:
            state["requests"] += 1
            fault = state["every"] > 0 and state["requests"] % state["every"] == 0
            if fault:
                state["faults"] += 1
            kind = state["faults"] % 3
            delay = state["delay"]
        if fault and kind != 0:
            code, status = ("SlowDown", 503) if kind == 1 else ("InternalError", 500)
            return self._reply(status, ERROR.format(code=code).encode(), [("Content-Type", "application/xml")])
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "content-length")}
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if RECORD:
            self._record(resp.status, body)
        if delay and self.headers.get("X-Amz-Target") == delay["target"]:
            time.sleep(float(delay["seconds"]))
        if fault:
            # The request took effect upstream; the client never hears of it.
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        # A HEAD answer keeps the object's length; the rest say what follows.
        length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _record(self, status, body):
        auth = self.headers.get("Authorization", "")
        target = self.headers.get("X-Amz-Target") or ""
        # Which secret a Secrets Manager call names (moto checks those
        # calls by action only; the test checks the resource).
        secret = glue = None
        try:
            if target.startswith("secretsmanager."):
                secret = json.loads(body or b"{}").get("SecretId")
            # And which Glue table a Glue call names (the same).
            if target.startswith("AWSGlue."):
                request = json.loads(body or b"{}")
                table = request.get("Name") or request.get("TableInput", {}).get("Name")
                glue = {"database": request.get("DatabaseName"), "table": table}
        except ValueError:
            pass
        key = auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else None
        line = {
            "key": key,
            "method": self.command,
            "path": self.path,
            "target": self.headers.get("X-Amz-Target"),
            "copy": self.headers.get("x-amz-copy-source") is not None,
            "tagging": self.headers.get("x-amz-tagging") is not None,
            "secret": secret,
            "glue": glue,
            "status": status,
        }
        with lock, open(RECORD, "a") as f:
            f.write(json.dumps(line) + "\n")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Proxy).serve_forever()
