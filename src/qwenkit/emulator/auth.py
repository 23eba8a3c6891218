"""API keys: who is calling, and the real 401 when nobody valid is.

DashScope authenticates ``Authorization: Bearer sk-...`` on every route (reference §1.2). The
emulator accepts, by default, any key of the real form (``sk-`` followed by key characters). With
``config.auth.keys`` it accepts exactly the listed keys, each valid only in its region: a key of
another region gets the same 401 as an unknown key, which is what the real service answers when a
Beijing key is used against the international host (reference §1.1).

Keys are never stored, logged or echoed: per-key state (counters, throttle windows, tasks) is
keyed by ``key_id``, a short sha256 of the key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from qwenkit._settings import Region
from qwenkit.emulator.config import AuthConfig

__all__ = ["AuthFailure", "KeyRing", "bearer_key", "key_id"]

AuthFailure = Literal["missing", "invalid", "region"]
"""Why a request was not authenticated (the reason given to ``validation.auth_error``): no
usable ``Authorization: Bearer`` header, a key that is not accepted, a key of another region."""

_KEY_FORM = re.compile(r"sk-[A-Za-z0-9_\-]+")


def key_id(key: str) -> str:
    """The id of a key for per-key state: 16 hex digits of its sha256 (the key itself is never kept)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    key = key.strip()
    return key or None


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The keys one emulator accepts, built once per configuration (lookups are by ``key_id``)."""

    region: Region
    accept_any_sk: bool
    listed: Mapping[str, Region | None]
    """``key_id`` → the key's region (``None``: valid everywhere)."""

    @classmethod
    def from_config(cls, auth: AuthConfig) -> KeyRing:
        return cls(
            region=auth.region,
            accept_any_sk=auth.accept_any_sk,
            listed={key_id(k.key): k.region for k in auth.keys},
        )

    def check(self, authorization: str | None) -> tuple[str | None, AuthFailure | None]:
        """``(key_id, None)`` for an accepted key, ``(None, reason)`` otherwise."""
        if not authorization:
            return None, "missing"
        key = bearer_key(authorization)
        if key is None:
            return None, "missing"
        ident = key_id(key)
        if self.listed:
            if ident not in self.listed:
                return None, "invalid"
            region = self.listed[ident]
            if region is not None and region != self.region:
                return None, "region"
            return ident, None
        if self.accept_any_sk and _KEY_FORM.fullmatch(key):
            return ident, None
        return None, "invalid"
