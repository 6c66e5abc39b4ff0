"""HTTP hardening of the served app (issue #17, item 11): security headers on every
response and no public ``/_stcore/metrics``, as ASGI middleware on the ``st.App``
(``app.py``), so they hold without a reverse proxy in front.

The content security policy is the one checked with Chromium on every page: the
maps need ``'wasm-unsafe-eval'``; the only thing it refuses is Streamlit's inline
``window.prerenderReady = false``, which the app does not use.
"""

from __future__ import annotations

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
HIDDEN_PATHS = ("/_stcore/metrics",)     # cache sizes and session counts: nothing for the network


class SecurityHeaders:
    """Pure ASGI middleware (websockets pass untouched)."""

    def __init__(self, app, base_path: str = ""):
        self.app = app
        base = "/" + base_path.strip("/") if base_path and base_path.strip("/") else ""
        self.hidden = {base + p for p in HIDDEN_PATHS}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path", "").rstrip("/") in self.hidden:
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"), *_encoded()]})
            await send({"type": "http.response.body", "body": b"Not Found"})
            return

        async def with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *[(k, v) for k, v in _encoded() if k not in present]]}
            await send(message)

        await self.app(scope, receive, with_headers)


def _encoded() -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
