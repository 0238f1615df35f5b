"""A Docker Engine API stand-in on a unix socket: answers the calls ``DockerOperator``
makes for one container (version, ping, image list, create, inspect, attach, start,
wait, remove)
and records every request, so a test can read the container spec that was sent.

There is no Docker engine here and podman cannot start containers on these machines
(docs/airflow.md); the container's output is the ``logs`` lines the test gives.
"""

from __future__ import annotations

import json
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

API = "1.43"


class DockerStub:
    """``with DockerStub(path, logs=[...]) as stub:`` — ``stub.url``, ``stub.requests``."""

    def __init__(self, path: Path, logs: list[str], exit_code: int = 0):
        self.path, self.logs, self.exit_code = path, logs, exit_code
        self.requests: list[tuple[str, str, dict | None]] = []
        self.started = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def address_string(self):
                return "unix"

            def _reply(self, code: int, body=None):
                data = b"" if body is None else (
                    body if isinstance(body, bytes) else json.dumps(body).encode())
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Api-Version", API)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                path = self.path.split("?")[0]
                stub.requests.append((self.command, self.path, body))
                if path.endswith("/version"):
                    return self._reply(200, {"ApiVersion": API, "Version": "stub"})
                if path.endswith("/_ping"):
                    return self._reply(200, b"OK")
                if path.endswith("/images/json"):
                    return self._reply(200, [{"Id": "sha256:stub", "RepoTags": []}])
                if path.endswith("/containers/create"):
                    return self._reply(201, {"Id": "c0ffee", "Warnings": []})
                if path.endswith("/c0ffee/json"):  # inspect: attach asks for the tty mode
                    return self._reply(200, {"Id": "c0ffee", "Config": {"Tty": False}})
                if path.endswith("/attach"):
                    return self._attach()
                if path.endswith("/start"):
                    stub.started.set()
                    return self._reply(204)
                if path.endswith("/wait"):
                    return self._reply(200, {"StatusCode": stub.exit_code})
                if self.command == "DELETE":
                    return self._reply(204)
                return self._reply(404, {"message": f"stub: {self.command} {path}"})

            def _attach(self):
                # the engine hijacks the connection: 101, then stdout frames once started
                self.send_response(101)
                self.send_header("Content-Type", "application/vnd.docker.raw-stream")
                self.send_header("Connection", "Upgrade")
                self.send_header("Upgrade", "tcp")
                self.end_headers()
                self.wfile.flush()
                stub.started.wait(30)
                for line in stub.logs:
                    data = (line + "\n").encode()
                    self.wfile.write(struct.pack(">BxxxL", 1, len(data)) + data)
                self.wfile.flush()
                self.close_connection = True

            do_GET = do_POST = do_DELETE = _handle

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(str(path), Handler)

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def created(self) -> dict:
        """The body of the container create call."""
        return next(b for m, p, b in self.requests if p.split("?")[0].endswith("/create"))

    def __enter__(self) -> DockerStub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
