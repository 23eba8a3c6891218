"""Virtual keys on SQL (``qk_keys``, ``qk_environments``; SQLite or PostgreSQL).

**The key** is ``qk-<id>-<secret>``: ``id`` is 12 lowercase hex characters (``secrets.token_hex``,
never a ``-``), ``secret`` is ``secrets.token_urlsafe(32)`` (43 characters, may hold ``-`` and
``_``); a key splits on its first two ``-`` only. The ``id`` is public (lists, usage records,
budgets name it); only the secret authenticates.

**Stored** is ``scrypt(secret, salt, n=2**14, r=8, p=1, dklen=32)`` with 16 random bytes of salt
per key: nothing of the secret itself, and a stolen table costs an attacker tens of milliseconds
and 16 MiB per guess. ``verify`` recomputes it in a worker thread (the event loop keeps serving) and
compares with ``hmac.compare_digest``. An unknown id costs the same scrypt against a dummy salt,
and a revoked key is refused only after the comparison, so timing says nothing about which ids
exist; a key that is not of the ``qk-<id>-<secret>`` shape at all is refused at once (the shape
is public).

**The verified-keys cache.** scrypt is slow on purpose, far too slow for every request of a
gateway; so ``verify`` remembers the keys it verified (by the sha256 of the whole key, never the
key) for ``verify_ttl`` seconds (60), at most 1024 of them. ``revoke`` in this process forgets the
key at once; a revocation by another process (another gateway replica, the CLI) takes effect here
within ``verify_ttl``. Failed verifications are not remembered: a key created elsewhere works at
once.

**Last use** is written at most once a minute per key (``LAST_USED_RESOLUTION``): not a write per
request, and the conditional update keeps several replicas from all writing it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import anyio.to_thread
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from qwenkit._exceptions import StorageError, UsageError
from qwenkit.storage._protocols import CreatedKey, KeyInfo, Limits
from qwenkit.storage._schema import environments, keys
from qwenkit.storage._sql import LoopEngines, storage_errors
from qwenkit.storage._urls import StoreURL, parse_store_url

__all__ = [
    "KEY_PREFIX",
    "LAST_USED_RESOLUTION",
    "REASONING_POLICIES",
    "SCRYPT_PARAMS",
    "SQLKeys",
    "check_limits",
    "open_keys",
    "split_key",
]

KEY_PREFIX = "qk"
REASONING_POLICIES = ("strip", "pass", "log")
"""A key's reasoning policy (``KeyInfo.reasoning``): never sent, sent, or logged only."""
SCRYPT_PARAMS: dict[str, int] = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
LAST_USED_RESOLUTION = 60.0
"""Seconds: ``last_used_at`` is rewritten only when it is older than this."""
_ID = re.compile(r"[0-9a-f]{12}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SALT_BYTES = 16
_NAME_LIMIT = 200
_ENVIRONMENT_LIMIT = 64
_VERIFIED_LIMIT = 1024
_NO_LIMITS = Limits()


def split_key(key: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a key of the ``qk-<id>-<secret>`` shape, else ``None``."""
    parts = key.split("-", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    key_id, secret = parts[1], parts[2]
    if not _ID.fullmatch(key_id) or not _SECRET.fullmatch(secret):
        return None
    return key_id, secret


def _scrypt(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, **SCRYPT_PARAMS)


def check_limits(limits: Limits) -> None:
    """A ``UsageError`` unless every limit set is positive (a zero limit would refuse every
    call: revoke the key instead) and the money limit a finite amount."""
    cost = limits.daily_cost
    if cost is not None and (not cost.is_finite() or cost <= 0):
        raise UsageError(f"the daily budget must be a positive amount, not {cost}")
    for name, value in (("rpm", limits.requests_per_minute), ("tpm", limits.tokens_per_minute)):
        if value is not None and value < 1:
            raise UsageError(f"the {name} limit must be at least 1, not {value}")


def _check_name(what: str, value: str, limit: int) -> None:
    if not value.strip() or len(value) > limit:
        raise UsageError(f"the {what} must be 1 to {limit} characters, not {value!r}")


def _aware(value: datetime | None) -> datetime | None:
    """A UTC-aware time (SQLite returns naive UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _decimal(value: Any) -> Decimal | None:
    """The amount of a ``Numeric(20, 9)`` column without its trailing zeros."""
    if value is None:
        return None
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return Decimal(format(amount.normalize(), "f"))


def _limits(row: Any) -> Limits:
    return Limits(
        daily_cost=_decimal(row.daily_budget),
        requests_per_minute=row.rpm,
        tokens_per_minute=row.tpm,
    )


def _info(row: Any) -> KeyInfo:
    created = _aware(row.created_at)
    assert created is not None
    return KeyInfo(
        id=row.id,
        name=row.name,
        environment=row.environment,
        limits=_limits(row),
        models=None if row.models is None else tuple(json.loads(row.models)),
        created_at=created,
        revoked_at=_aware(row.revoked_at),
        last_used_at=_aware(row.last_used_at),
        reasoning=row.reasoning,
        max_tokens=row.max_tokens,
    )


@dataclass(frozen=True, slots=True)
class _Verified:
    info: KeyInfo
    until: float


class SQLKeys:
    """``Keys`` on the ``qk_keys`` and ``qk_environments`` tables; see the module docstring.

    ``clock`` gives epoch seconds (a fake one in tests); ``verify_ttl`` is how long a verified key
    is trusted without scrypt (0: never). ``migrate`` brings the schema up to date at open (an
    unreachable database is a ``StorageError`` here)."""

    def __init__(
        self,
        url: str | StoreURL,
        *,
        migrate: bool = True,
        clock: Callable[[], float] = time.time,
        verify_ttl: float = 60.0,
    ) -> None:
        parsed = parse_store_url(url, part="keys")
        parsed.require_driver()
        if migrate:
            from qwenkit.storage._migrate import upgrade_store

            upgrade_store(parsed)
        self.url = parsed
        self.verify_ttl = verify_ttl
        self._clock = clock
        self._engines = LoopEngines(parsed, pool_size=5)
        self._insert: Any = postgresql.insert if parsed.backend == "postgresql" else sqlite.insert
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        self._dummy_salt = secrets.token_bytes(_SALT_BYTES)
        self._dummy_hash = secrets.token_bytes(SCRYPT_PARAMS["dklen"])

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), timezone.utc)

    async def create(
        self,
        name: str,
        *,
        environment: str | None = None,
        limits: Limits = _NO_LIMITS,
        models: Sequence[str] | None = None,
        reasoning: str | None = None,
        max_tokens: int | None = None,
    ) -> CreatedKey:
        """A new key; ``CreatedKey.key`` is the only time the key exists outside its holder."""
        _check_name("key name", name, _NAME_LIMIT)
        if reasoning not in (None, *REASONING_POLICIES):
            raise UsageError(
                f"reasoning must be one of {', '.join(REASONING_POLICIES)}, not {reasoning!r}"
            )
        if max_tokens is not None and (isinstance(max_tokens, bool) or max_tokens < 1):
            raise UsageError(f"max_tokens must be at least 1 (or None: no cap), not {max_tokens}")
        if environment is not None:
            _check_name("environment name", environment, _ENVIRONMENT_LIMIT)
        check_limits(limits)
        chosen = None if models is None else tuple(models)
        if chosen is not None and (not chosen or not all(m.strip() for m in chosen)):
            raise UsageError("models must name at least one model (or be None: any model)")
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(_SALT_BYTES)
        digest = await anyio.to_thread.run_sync(_scrypt, secret, salt)
        created = self._now()
        for _attempt in range(3):  # 48 random bits: a clash is rare, three in a row never
            key_id = secrets.token_hex(6)
            row = {
                "id": key_id,
                "name": name,
                "environment": environment,
                "salt": salt,
                "hash": digest,
                "daily_budget": limits.daily_cost,
                "rpm": limits.requests_per_minute,
                "tpm": limits.tokens_per_minute,
                "models": None if chosen is None else json.dumps(list(chosen)),
                "created_at": created,
                "reasoning": reasoning,
                "max_tokens": max_tokens,
            }
            try:
                async with (
                    storage_errors(self.url, "keys store"),
                    self._engines.get().write.begin() as conn,
                ):
                    await conn.execute(keys.insert().values(**row))
            except StorageError as exc:
                if isinstance(exc.__cause__, IntegrityError):
                    continue
                raise
            info = KeyInfo(
                id=key_id,
                name=name,
                environment=environment,
                limits=replace(limits, daily_cost=_decimal(limits.daily_cost)),
                models=chosen,
                created_at=created,
                revoked_at=None,
                last_used_at=None,
                reasoning=reasoning,
                max_tokens=max_tokens,
            )
            return CreatedKey(key=f"{KEY_PREFIX}-{key_id}-{secret}", info=info)
        raise StorageError(
            f"could not find a free key id in {self.url.masked}", url=self.url.masked
        )

    async def verify(self, key: str) -> KeyInfo | None:
        """The key's info when ``key`` is a valid, unrevoked key; ``None`` otherwise."""
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        now = self._clock()
        fingerprint = hashlib.sha256(key.encode("utf-8")).digest()
        known = self._verified.get(fingerprint)
        if known is not None and known.until > now:
            self._verified.move_to_end(fingerprint)
            return await self._touch(known.info, now)
        row = await self._row(key_id)
        salt, stored = (row.salt, row.hash) if row is not None else (self._dummy_salt, None)
        digest = await anyio.to_thread.run_sync(_scrypt, secret, bytes(salt))
        matches = hmac.compare_digest(digest, bytes(stored) if stored else self._dummy_hash)
        if row is None or not matches or row.revoked_at is not None:
            self._verified.pop(fingerprint, None)
            return None
        info = _info(row)
        if self.verify_ttl > 0:
            self._verified[fingerprint] = _Verified(info, now + self.verify_ttl)
            while len(self._verified) > _VERIFIED_LIMIT:
                self._verified.popitem(last=False)
        return await self._touch(info, now)

    async def _row(self, key_id: str) -> Any:
        async with (
            storage_errors(self.url, "keys store"),
            self._engines.get().read.connect() as conn,
        ):
            found = await conn.execute(select(keys).where(keys.c.id == key_id))
            return found.first()

    async def _touch(self, info: KeyInfo, now: float) -> KeyInfo:
        """Record a use of ``info``'s key, unless one was recorded less than a minute ago;
        ``info`` with the last use as recorded."""
        last = info.last_used_at
        if last is not None and now - last.timestamp() < LAST_USED_RESOLUTION:
            return info
        when = datetime.fromtimestamp(now, timezone.utc)
        threshold = datetime.fromtimestamp(now - LAST_USED_RESOLUTION, timezone.utc)
        async with (
            storage_errors(self.url, "keys store"),
            self._engines.get().write.begin() as conn,
        ):
            await conn.execute(
                update(keys)
                .where(
                    keys.c.id == info.id,
                    or_(keys.c.last_used_at.is_(None), keys.c.last_used_at < threshold),
                )
                .values(last_used_at=when)
            )
        updated = replace(info, last_used_at=when)
        for fingerprint, entry in self._verified.items():
            if entry.info.id == info.id:
                self._verified[fingerprint] = _Verified(updated, entry.until)
        return updated

    async def get(self, key_id: str) -> KeyInfo | None:
        row = await self._row(key_id)
        return None if row is None else _info(row)

    async def list(self, *, include_revoked: bool = False) -> Sequence[KeyInfo]:
        """The keys, oldest first (only the active ones unless ``include_revoked``)."""
        query = select(keys).order_by(keys.c.created_at, keys.c.id)
        if not include_revoked:
            query = query.where(keys.c.revoked_at.is_(None))
        async with (
            storage_errors(self.url, "keys store"),
            self._engines.get().read.connect() as conn,
        ):
            return [_info(row) for row in (await conn.execute(query)).all()]

    async def revoke(self, key_id: str) -> bool:
        """Revoke the key (in this process at once, in others within ``verify_ttl``)."""
        async with (
            storage_errors(self.url, "keys store"),
            self._engines.get().write.begin() as conn,
        ):
            done = await conn.execute(
                update(keys)
                .where(keys.c.id == key_id, keys.c.revoked_at.is_(None))
                .values(revoked_at=self._now())
            )
        for fingerprint in [f for f, entry in self._verified.items() if entry.info.id == key_id]:
            del self._verified[fingerprint]
        return bool(done.rowcount)

    async def set_environment(self, name: str, limits: Limits) -> None:
        """Set (or replace) the limits of environment ``name`` over all of its keys."""
        _check_name("environment name", name, _ENVIRONMENT_LIMIT)
        check_limits(limits)
        row = {
            "name": name,
            "daily_budget": limits.daily_cost,
            "rpm": limits.requests_per_minute,
            "tpm": limits.tokens_per_minute,
        }
        statement = self._insert(environments).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=[environments.c.name],
            set_={name: statement.excluded[name] for name in row if name != "name"},
        )
        async with (
            storage_errors(self.url, "keys store"),
            self._engines.get().write.begin() as conn,
        ):
            await conn.execute(statement)

    async def environment(self, name: str) -> Limits | None:
        """The limits of environment ``name`` (``None``: never set)."""
        async with (
            storage_errors(self.url, "keys store"),
            self._engines.get().read.connect() as conn,
        ):
            found = await conn.execute(select(environments).where(environments.c.name == name))
            row = found.first()
        return None if row is None else _limits(row)

    async def aclose(self) -> None:
        await self._engines.aclose()

    def __repr__(self) -> str:
        return f"SQLKeys({self.url.masked!r})"


def open_keys(url: str | StoreURL, **options: Any) -> SQLKeys:
    """The keys store at ``url`` (SQLite or PostgreSQL); ``options`` go to ``SQLKeys``."""
    return SQLKeys(parse_store_url(url, part="keys"), **options)
