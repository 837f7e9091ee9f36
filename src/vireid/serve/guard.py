"""Access controls in front of the service (an ASGI middleware, so they act before any
body is read or decoded).

In order, each request is refused (JSON ``{"error": …}``) when:

1. its ``Host`` header names no allowed host (400): a DNS-rebinding page reaches the
   service under its own domain name, which is not on the list (default: the loopback
   names and the address it listens on);
2. it comes from a web page of another origin (``Origin`` neither this service nor a
   ``cors_origins`` entry; 403): multipart POSTs are CORS-"simple", so a browser sends
   them without asking first — this refusal is what stops a page on the same machine
   from adding to the gallery. Allowed origins get CORS headers and preflight answers;
   nothing else does (the browser then hides the answers from other pages);
3. it lacks the API token (401; ``Authorization: Bearer <token>``, compared in constant
   time) — writes always when a token is set, reads too with ``token_reads``; the
   page at ``/`` (static HTML, no data) stays open;
4. it writes to a read-only service (403);
5. its body is larger than ``max_body`` bytes: declared (``Content-Length``) is refused
   at once; chunked or under-declared bodies are counted as they stream and refused
   (413) when the count passes the limit, so no more than the limit is ever read.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
WRITES = {("POST", "/gallery")}
OPEN = {("GET", "/")}  # the page: static, holds no gallery data
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True)
class Policy:
    max_body: int  # bytes
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # "*": any
    cors_origins: tuple[str, ...] = ()
    token: str | None = None
    token_reads: bool = False
    read_only: bool = False


def host_name(host: str) -> str:
    """The name in a Host header, without its port: "[::1]:80" → "::1"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _answer(send, status: int, message: str, headers=()) -> None:
    body = json.dumps({"error": message}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*head, *SECURITY_HEADERS, *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware applying ``policy`` (see the module's doc)."""

    def __init__(self, app, policy: Policy) -> None:
        self.app, self.policy = app, policy
        self._hosts = {h.lower() for h in policy.allowed_hosts}
        self._token = policy.token.encode() if policy.token else None

    def _refusal(self, method: str, path: str, headers: dict) -> tuple | None:
        p = self.policy
        host = headers.get("host", "")
        if "*" not in self._hosts and host_name(host) not in self._hosts:
            return 400, f"Host {host!r} is not served here (--allowed-host)", ()
        origin = headers.get("origin")
        foreign = origin is not None and urlsplit(origin).netloc.lower() != host.lower()
        if foreign and origin not in p.cors_origins:
            return 403, f"requests from pages of {origin!r} are refused (--cors-origin)", ()
        write = (method, path) in WRITES
        if self._token and (write or (p.token_reads and (method, path) not in OPEN)):
            auth = headers.get("authorization", "")
            given = auth[7:].strip().encode() if auth[:7].lower() == "bearer " else b""
            if not hmac.compare_digest(given, self._token):
                what = "a wrong" if given else "no"
                return (
                    401,
                    f"{what} API token; send the header 'Authorization: Bearer <token>'",
                    [(b"www-authenticate", b"Bearer")],
                )
        if write and p.read_only:
            return 403, "this service is read-only (started with --read-only)", ()
        size = headers.get("content-length", "")
        if size.isdigit() and int(size) > p.max_body:
            return 413, f"a request of {int(size) / 2**20:.1f} MB; {self.limit_text}", ()
        return None

    @property
    def limit_text(self) -> str:
        return f"requests are limited to {self.policy.max_body / 2**20:g} MB (--max-upload-mb)"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        origin = headers.get("origin")
        cors = []
        if origin is not None and origin in self.policy.cors_origins:
            cors = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]
            if method == "OPTIONS" and "access-control-request-method" in headers:
                preflight = [
                    (b"access-control-allow-methods", b"GET, POST"),
                    (b"access-control-allow-headers", b"Authorization, Content-Type"),
                    (b"access-control-max-age", b"600"),
                ]
                await send(
                    {"type": "http.response.start", "status": 204, "headers": cors + preflight}
                )
                await send({"type": "http.response.body", "body": b""})
                return
        refusal = self._refusal(method, path, headers)
        if refusal is not None:
            await _answer(send, refusal[0], refusal[1], [*refusal[2], *cors])
            return

        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.policy.max_body:  # FastAPI lets an HTTPException through
                    from starlette.exceptions import HTTPException

                    raise HTTPException(413, f"a request body over the limit; {self.limit_text}")
            return message

        async def decorated(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], *SECURITY_HEADERS, *cors]}
            await send(message)

        await self.app(scope, counted, decorated)
