"""The gateway's HTTP client to its upstream: httpx's interface over aiohttp's connection pool.

The SDK talks to the upstream through an ``httpx.AsyncClient`` and nothing else; which transport
moves the bytes is the client's business. The gateway, with many callers at once on one pool,
uses ``httpx_aiohttp.AiohttpTransport`` (the transport openai-python offers for the same reason)
instead of httpx's own: httpcore's pool checks the socket of *every* pooled connection with a
``poll()`` system call each time it assigns a request (``has_expired`` →
``is_socket_readable``), so with 32 connections open that scan cost more CPU than the rest of the
gateway's work on a request; aiohttp's connector hands out an idle connection without it. Its
timeouts are the per-request ones the SDK sets (connect, read, pool). The SDK's own default stays
httpx's pool: one application, a few connections.

One correction on top: httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` that is not a
timeout (a refused connection, a server that closed it) to ``httpx.ConnectTimeout``, which would
make an unreachable upstream a 504 "did not answer in time"; ``_Transport`` raises
``httpx.ConnectError`` (502 "cannot be reached"), ``httpx.RemoteProtocolError`` (the server
closed the connection), ``httpx.ReadError`` (it reset the connection) or ``httpx.WriteError``
(the request could not be written on a pooled connection the server had closed; the SDK's
transport sends a request that met one of these three again once) for those.
"""

from __future__ import annotations

import asyncio
import errno

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["MAX_CONNECTIONS", "upstream_client"]

MAX_CONNECTIONS = 512
"""Connections to the upstream kept at most (requests beyond wait for one, up to the pool
timeout)."""


class _Transport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if cause is None or isinstance(cause, (asyncio.TimeoutError, TimeoutError)):
                raise  # a real timeout
            if isinstance(cause, aiohttp.ServerDisconnectedError):
                raise httpx.RemoteProtocolError(str(cause) or "server disconnected",
                                                request=request) from cause  # fmt: skip
            if isinstance(cause, aiohttp.ClientOSError) and _unsent(cause):
                raise httpx.WriteError(str(cause), request=request) from cause
            if isinstance(cause, aiohttp.ClientOSError) and cause.errno == errno.ECONNRESET:
                raise httpx.ReadError(str(cause), request=request) from cause
            raise httpx.ConnectError(str(cause), request=request) from cause


def _unsent(error: aiohttp.ClientOSError) -> bool:
    """aiohttp could not write the request: the pooled connection was closed by the server."""
    return "Can not write request body" in str(error)


def upstream_client(timeout: httpx.Timeout | None = None) -> httpx.AsyncClient:
    """A pooled client for the upstream (close it with ``aclose``)."""
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, keepalive_expiry=30.0)
    transport = _Transport(limits=limits, trust_env=True)
    return httpx.AsyncClient(transport=transport, timeout=timeout or httpx.Timeout(60.0))
