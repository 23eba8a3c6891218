"""Who is calling: the virtual key of the ``Authorization`` header, or the master key.

``Authorization: Bearer <key>`` on every route (the ``openai`` and ``dashscope`` SDKs both send
it). A virtual key is verified by the store (``Keys.verify``: scrypt, constant-time, cached for
60 s in process); the master key is compared in constant time. A missing, unknown or revoked key
is a 401 ``InvalidApiKey``; a key limited to some models calling another is a 403
``AccessDenied``. Keys are never logged nor echoed: the error names only the key's id.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from qwenkit.gateway._errors import GatewayError
from qwenkit.storage import KeyInfo, Keys

__all__ = ["Caller", "authenticate", "bearer"]

_INVALID = "Invalid API-key provided."


@dataclass(frozen=True)
class Caller:
    """The caller of one request: a virtual key, the master key (``master``), or anonymous
    (both ``None``/``False``, when keys are not required)."""

    key: KeyInfo | None = None
    master: bool = False

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    @property
    def environment(self) -> str | None:
        return self.key.environment if self.key else None


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(
    request: Request, *, keys: Keys | None, master_key: str | None, required: bool
) -> Caller:
    """The caller of ``request``; ``GatewayError`` (401) when it must and cannot be named."""
    token = bearer(request)
    if token is None:
        if required:
            raise GatewayError.of("InvalidApiKey", "No API-key provided.", status=401)
        return Caller()
    if master_key is not None and hmac.compare_digest(token.encode(), master_key.encode()):
        return Caller(master=True)
    info = await keys.verify(token) if keys is not None else None
    if info is None or not info.active:
        if required or keys is not None:
            raise GatewayError.of("InvalidApiKey", _INVALID, status=401)
        return Caller()
    return Caller(key=info)


def check_model(caller: Caller, model: str) -> None:
    """403 when the caller's key may not call ``model``."""
    allowed = caller.key.models if caller.key else None
    if allowed is not None and model not in allowed:
        raise GatewayError.of(
            "AccessDenied",
            f"The key {caller.key_id} may not call {model!r} (allowed: {', '.join(allowed)}).",
            status=403,
        )
