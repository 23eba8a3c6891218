"""The dashboard's sign-in: a signed session cookie, CSRF tokens, and a limit on wrong keys.

**Session.** Signing in with the master key (a form POST: the key never goes in a URL) sets
``qk_session``: ``<expiry>.<nonce>.<signature>``, the signature an HMAC-SHA256 of the expiry and
nonce under a secret derived from the master key, so every gateway process sharing the master
key accepts it and nothing is stored. The cookie is ``HttpOnly`` (no script can read it),
``Secure``, ``SameSite=Strict`` and scoped to ``/dashboard``; it lasts ``SESSION_SECONDS``.
Changing the master key signs everyone out. Signing out deletes the cookie (a copy taken before
stays valid until it expires: the price of a stateless session, bounded by its lifetime).

**CSRF.** Every state-changing form carries a ``csrf`` field: after sign-in an HMAC of the
session's nonce (so a token of one session is worthless in another), on the sign-in form the
double-submit of a random ``qk_csrf`` cookie. ``SameSite=Strict`` already keeps the session
cookie off cross-site requests; the token is the second lock.

**Wrong keys.** ``LoginLimiter`` counts failed sign-ins per client address in a sliding
minute: past ``FAILURES_PER_MINUTE`` the sign-in answers 429 without checking the key, so the
master key cannot be guessed at speed. In memory, per process.

Hand-written on ``hmac``/``secrets`` rather than a session library: the session holds no data
(only "signed in until"), so a signed timestamp is all there is, and Starlette's
``SessionMiddleware`` would sign a JSON payload for every route of the gateway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "CSRF_COOKIE",
    "FAILURES_PER_MINUTE",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "LoginLimiter",
    "Sessions",
]

SESSION_COOKIE = "qk_session"
CSRF_COOKIE = "qk_csrf"
SESSION_SECONDS = 8 * 3600
FAILURES_PER_MINUTE = 5


@dataclass(frozen=True)
class Session:
    nonce: str
    expires: int


class Sessions:
    """Sessions signed with a secret derived from the master key (see the module docstring)."""

    def __init__(self, master_key: str, *, clock: Callable[[], float] = time.time) -> None:
        self._master = master_key.encode()
        self._secret = hashlib.sha256(b"qwenkit-dashboard-session\0" + self._master).digest()
        self._clock = clock

    def check_key(self, given: str) -> bool:
        """Whether ``given`` is the master key (compared in constant time)."""
        return hmac.compare_digest(given.encode(), self._master)

    def new(self) -> str:
        """A session cookie's value, valid for ``SESSION_SECONDS``."""
        expires = int(self._clock()) + SESSION_SECONDS
        nonce = secrets.token_urlsafe(16)
        return f"{expires}.{nonce}.{self._sign(f'{expires}.{nonce}')}"

    def read(self, value: str | None) -> Session | None:
        """The session of a cookie's value, or ``None`` (missing, forged or expired)."""
        if not value or value.count(".") != 2:
            return None
        expires, nonce, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign(f"{expires}.{nonce}")):
            return None
        if not expires.isdigit() or int(expires) <= self._clock():
            return None
        return Session(nonce, int(expires))

    def csrf(self, session: Session) -> str:
        """The CSRF token of ``session``'s forms."""
        return self._sign(f"csrf.{session.nonce}")

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.csrf(session))

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()


class LoginLimiter:
    """Failed sign-ins per client in the last minute (see the module docstring)."""

    def __init__(
        self, limit: int = FAILURES_PER_MINUTE, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, client: str) -> bool:
        return len(self._recent(client)) >= self.limit

    def failed(self, client: str) -> None:
        self._recent(client).append(self._clock())
        if len(self._failures) > 10_000:  # a flood of addresses: forget the quiet ones
            for address in [a for a, times in self._failures.items() if not times]:
                del self._failures[address]

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        cutoff = self._clock() - 60.0
        while times and times[0] <= cutoff:
            times.popleft()
        return times
