"""The template's HTTP API served on loopback: each route invokes its function through moto's Lambda API
with an API Gateway payload-2.0 event, the way API Gateway does."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import boto3


class HttpApiServer:
    def __init__(self, routes: dict[tuple[str, str], str], *, host: str = "127.0.0.1", port: int = 0):
        self.routes = routes  # (METHOD, /path) → function ARN
        self.host, self.port = host, port
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> str:
        routes = self.routes
        lam = boto3.client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{os.environ['MOTO_PORT']}",
            region_name=(routes and next(iter(routes.values())).split(":")[3]) or "ap-south-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto accepts any credentials
        )

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the functions log for themselves
                return

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                arn = routes.get((self.command, parts.path))
                if arn is None:
                    self._reply(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
                    return
                length = int(self.headers.get("content-length") or 0)
                headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "cookie"}
                # API Gateway forwards the protocol (always https there; plain http here), and the Cookie
                # header as the event's ``cookies`` list
                headers["x-forwarded-proto"] = "http"
                cookies = [c.strip() for value in self.headers.get_all("cookie") or [] for c in value.split(";")]
                event = {
                    "version": "2.0",
                    "routeKey": f"{self.command} {parts.path}",
                    "rawPath": parts.path,
                    "rawQueryString": parts.query,
                    "queryStringParameters": dict(parse_qsl(parts.query)) or None,
                    "headers": headers,
                    **({"cookies": [c for c in cookies if c]} if any(cookies) else {}),
                    "requestContext": {"http": {"method": self.command, "path": parts.path, "sourceIp": "127.0.0.1"}},
                    "body": self.rfile.read(length).decode() if length else None,
                    "isBase64Encoded": False,
                }
                answer = lam.invoke(FunctionName=arn, Payload=json.dumps(event).encode())
                payload = json.loads(answer["Payload"].read() or b"{}")
                if answer.get("FunctionError"):
                    self._reply(500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
                    return
                body = payload.get("body") or ""
                status = int(payload.get("statusCode", 200))
                self._reply(status, payload.get("headers") or {}, body.encode(), payload.get("cookies") or [])

            def _reply(self, status: int, headers: dict, body: bytes, cookies: list | None = None) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                for cookie in cookies or []:  # a payload-2.0 response's cookies, one Set-Cookie header each
                    self.send_header("set-cookie", cookie)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name="local-http-api", daemon=True).start()
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
