"""A small HTTP(S) server on 127.0.0.1 for stateful fakes: routes by method and path
pattern, parses form, multipart, JSON and XML bodies, and records every request."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
import socket
import ssl
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any  # dict for form/multipart/JSON, str for XML, bytes otherwise
    headers: dict[str, str] = field(repr=False, default_factory=dict)


@dataclass
class Response:
    status: int = 200
    body: bytes | str | dict | list | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # the status line's phrase: Proxmox puts its errors there


class HTTPError(Exception):
    def __init__(self, status: int, message: str = ""):
        super().__init__(message)
        self.status, self.message = status, message


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, made with openssl (tests only)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if not cert.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
            + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
            + ["-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
    return cert, key


def _parse_body(content_type: str, raw: bytes) -> Any:
    if not raw:
        return {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
    if content_type.startswith("application/json"):
        return json.loads(raw)
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
        )
        form: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            filename = part.get_filename()
            form[name] = (filename, data) if filename else data.decode()
        return form
    if "xml" in content_type:
        return raw.decode()
    return raw


class FakeServer:
    """Subclasses register handlers with @route; each gets (request, **groups) and returns
    a Response or a JSON-able value. Every request is appended to `self.requests`."""

    routes: list[tuple[str, re.Pattern, str]] = []  # noqa: RUF012 — each fake sets its own

    def __init__(self, tls_dir: Path | None = None):
        self.requests: list[Request] = []
        self.lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # headers and body go out in two writes: without this, Nagle and the
                # client's delayed ACK cost 40 ms per request
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args):
                pass

            def _handle(self):
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                req = Request(
                    self.command,
                    urllib.parse.unquote(parts.path),
                    dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)),
                    _parse_body(self.headers.get("Content-Type", ""), raw),
                    dict(self.headers.items()),
                )
                resp = fake.dispatch(req)
                body = resp.body
                if isinstance(body, (dict, list)) or (
                    body is None and resp.content_type == "application/json"
                ):
                    body = json.dumps(body)
                data = body.encode() if isinstance(body, str) else (body or b"")
                self.send_response(resp.status, resp.reason)
                self.send_header("Content-Type", resp.content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls_dir is not None:
            cert, key = self_signed_cert(tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def dispatch(self, req: Request) -> Response:
        with self.lock:
            self.requests.append(req)
            for method, pattern, name in self.routes:
                m = pattern.fullmatch(req.path)
                if m and method == req.method:
                    try:
                        out = getattr(self, name)(req, **m.groupdict())
                    except HTTPError as exc:
                        return self.error(exc)
                    return out if isinstance(out, Response) else Response(body=out)
            return self.error(HTTPError(404, f"no route for {req.method} {req.path}"))

    def error(self, exc: HTTPError) -> Response:
        return Response(exc.status, {"errors": exc.message}, reason=exc.message or None)


def route(method: str, pattern: str):
    """Register a FakeServer method for `method pattern` (a regex with named groups)."""

    def mark(func):
        func._route = (method, re.compile(pattern))
        return func

    return mark


def collect_routes(cls):
    """Class decorator: gather @route methods (in definition order) into cls.routes."""
    cls.routes = [
        (*func._route, name) for name, func in vars(cls).items() if hasattr(func, "_route")
    ]
    return cls


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]
