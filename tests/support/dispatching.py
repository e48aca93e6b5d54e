"""A test client for the dispatch table: requests answered as the front end would, no socket.

The head goes through the real parser (webhook.serving.httpwire), the route
through the real table, `on_loop` first and `in_thread` when it gives None,
both in the calling thread. The listener is the one whose port `base_url`
names. Bodies over the size limit are the front end's to refuse (tests that
need that run a real Front: tests.servers.running_front).
"""

from __future__ import annotations

import json as jsonlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webhook.serving.dispatch import Dispatch
from webhook.serving.httpwire import parse_head
from webhook.serving.routes import ADMIN, ADMISSION, Request


@dataclass
class Reply:
    status_code: int
    headers: dict[str, str]
    data: bytes

    @property
    def mimetype(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip()

    @property
    def json(self) -> Any:
        return jsonlib.loads(self.data)

    def get_json(self) -> Any:
        return self.json

    def get_data(self, as_text: bool = False) -> Any:
        return self.data.decode() if as_text else self.data


class DispatchClient:
    def __init__(self, dispatch: Dispatch, webhook_port: int = 8443) -> None:
        self.dispatch = dispatch
        self.webhook_port = webhook_port
        self.base_url = f"https://localhost:{webhook_port}"

    def open(
        self,
        method: str,
        path: str,
        base_url: str | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        content_type: str | None = None,
    ) -> Reply:
        body = data.encode() if isinstance(data, str) else data or b""
        if json is not None:
            body, content_type = jsonlib.dumps(json).encode(), "application/json"
        port = urlsplit(base_url or self.base_url).port or 443
        lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        head = parse_head(("\r\n".join(lines) + "\r\n\r\n").encode())
        listener = ADMISSION if port == self.webhook_port else ADMIN
        request = Request(listener, port, head, body, ("127.0.0.1", 1), time.monotonic())
        route = self.dispatch.route(request)
        answer = route.on_loop(request, 0.0) if route.on_loop is not None else None
        if answer is None:
            assert route.in_thread is not None, f"no way to answer {method} {path}"
            answer = route.in_thread(request)
        status, headers, payload = answer
        if method == "HEAD":
            payload = b""
        return Reply(int(status.split()[0]), dict(headers), payload)

    def get(self, path: str, **options: Any) -> Reply:
        return self.open("GET", path, **options)

    def head(self, path: str, **options: Any) -> Reply:
        return self.open("HEAD", path, **options)

    def post(self, path: str, **options: Any) -> Reply:
        return self.open("POST", path, **options)
