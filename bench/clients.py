"""HTTP transports of the load generator: a lean hand-written HTTP/1.1 client (default) or httpx.

The load generator shares the machine's two cores with gunicorn and PostgreSQL,
so its own cost per request is part of every figure. Measured against the
ceiling route on this machine, httpx.AsyncClient spends 2-6 ms of CPU per
request (0.7-0.9 of a core at 250 requests/s, and the ceiling it reports
halves); the raw client below spends 0.2-0.5 ms. `--client httpx` runs the
bench on httpx anyway, to compare.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol
from urllib.parse import urlsplit

import httpx

TIMEOUT = 60.0
KINDS = ("raw", "httpx")
# What a failed request can raise: no response at all (status 0 in the samples).
TRANSPORT_ERRORS = (httpx.HTTPError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


class Transport(Protocol):
    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        ...

    async def aclose(self) -> None:
        ...


class RawHttp:
    """One client's keep-alive HTTP/1.1 connection (reopened when the server closes it)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        message = self._encode(method, path, headers, body)
        for attempt in (1, 2):
            reused = self.writer is not None
            try:
                async with asyncio.timeout(TIMEOUT):  # unlike wait_for, no task per request
                    return await self._exchange(message)
            except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                await self.aclose()
                nothing_back = not getattr(exc, "partial", b"")
                if not (reused and nothing_back and attempt == 1):
                    raise
                # The server closed an idle keep-alive connection before reading the request: send it again.
            except BaseException:
                await self.aclose()
                raise
        raise AssertionError("unreachable")

    async def _exchange(self, message: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(message)
        await self.writer.drain()
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in head[1:] if h)}
        if "content-length" in fields:
            body = await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            body, fields["connection"] = await self.reader.read(), "close"
        if fields.get("connection", "").lower() == "close":
            await self.aclose()
        return status, body

    async def _chunked(self) -> bytes:
        chunks = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append((await self.reader.readexactly(size + 2))[:-2])
        await self.reader.readuntil(b"\r\n")  # the end of the (empty) trailer
        return b"".join(chunks)

    def _encode(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: application/json"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")

    async def aclose(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class HttpxPool:
    """httpx.AsyncClient with a keep-alive pool sized to the clients that share it."""

    def __init__(self, base_url: str, size: int) -> None:
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(TIMEOUT))

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"}
        response = await self.client.request(method, path, headers=headers, content=body)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


@contextlib.asynccontextmanager
async def connections(kind: str, base_url: str, count: int) -> AsyncIterator[list[Transport]]:
    """`count` clients' transports: one raw connection each, or one httpx pool of `count` shared."""
    if kind == "httpx":
        pool = HttpxPool(base_url, count)
        transports: list[Transport] = [pool] * count
        owned: list[Transport] = [pool]
    elif kind == "raw":
        transports = owned = [RawHttp(base_url) for _n in range(count)]
    else:
        raise ValueError(f"unknown client kind {kind!r}; one of {KINDS}")
    try:
        yield transports
    finally:
        for transport in owned:
            await transport.aclose()
