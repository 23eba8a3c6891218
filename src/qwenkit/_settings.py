"""``Settings``: the one configuration object of qwenkit.

Sources, highest priority first: arguments given in code, environment variables (``QWENKIT_*``
and the standard ``DASHSCOPE_API_KEY``), an optional TOML file (``QWENKIT_CONFIG`` or
``Settings.load(config_file=...)``), then defaults. This module is the only place in qwenkit
that reads the environment.

Secrets: the API key comes from the environment or from a secrets file (``api_key_file``, one
line), never from the TOML file (a config file is shared and committed; a key in it is a leak
waiting to happen, so the loader refuses it). The key is a ``SecretStr``: ``repr``, ``str`` and
``model_dump`` show ``**********``.

Regions map to the two base URLs of the service (``shared/reference/dashscope-wire.md`` §1.1).
The Hong Kong native URL is not documented anywhere we could read: it is a guess, flagged in
``REGIONS``, and ``native_base_url`` overrides it.

``base_url`` (``QWENKIT_BASE_URL``) takes a URL the way users paste it (``BaseURLs.parse``): a
service root (``http://127.0.0.1:8400``: both modes below it), the OpenAI-compatible base every
DashScope guide shows (``.../compatible-mode/v1``) or the native base of the dashscope SDK
(``.../api/v1``), with or without a trailing slash; the other base is derived from it. Any other
``.../v1`` is an OpenAI-compatible server's base (vLLM, SGLang, llama.cpp), used as given in
``compat`` mode and refused in ``native`` mode. Endpoint URLs (``.../chat/completions``,
``.../services/aigc/...``) and bases without their version (``.../compatible-mode``,
``.../api``) are refused with the forms that are accepted. The client checks its mode's URL when
it is made, so a wrong URL fails there, not at the first call.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qwenkit._exceptions import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class Region(str, Enum):
    CN_BEIJING = "cn-beijing"
    AP_SOUTHEAST_1 = "ap-southeast-1"
    US_EAST_1 = "us-east-1"
    CN_HONGKONG = "cn-hongkong"


REGION_ALIASES: dict[str, Region] = {
    "cn": Region.CN_BEIJING,
    "beijing": Region.CN_BEIJING,
    "china": Region.CN_BEIJING,
    "intl": Region.AP_SOUTHEAST_1,
    "international": Region.AP_SOUTHEAST_1,
    "singapore": Region.AP_SOUTHEAST_1,
    "us": Region.US_EAST_1,
    "virginia": Region.US_EAST_1,
    "hk": Region.CN_HONGKONG,
    "hongkong": Region.CN_HONGKONG,
    "hong-kong": Region.CN_HONGKONG,
}


@dataclass(frozen=True, slots=True)
class RegionEndpoints:
    compat: str
    native: str
    native_confirmed: bool = True


REGIONS: dict[Region, RegionEndpoints] = {
    Region.CN_BEIJING: RegionEndpoints(
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "https://dashscope.aliyuncs.com/api/v1",
    ),
    Region.AP_SOUTHEAST_1: RegionEndpoints(
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "https://dashscope-intl.aliyuncs.com/api/v1",
    ),
    Region.US_EAST_1: RegionEndpoints(
        "https://dashscope-us.aliyuncs.com/compatible-mode/v1",
        "https://dashscope-us.aliyuncs.com/api/v1",
    ),
    Region.CN_HONGKONG: RegionEndpoints(
        "https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1",
        "https://cn-hongkong.dashscope.aliyuncs.com/api/v1",
        native_confirmed=False,
    ),
}

Mode = Literal["compat", "native"]

_COMPAT_SUFFIX = "/compatible-mode/v1"
_NATIVE_SUFFIX = "/api/v1"
_ENDPOINT_SUFFIXES = ("/chat/completions", "/models", "/tasks", "/generation")
_UNVERSIONED = ("/compatible-mode", "/api")
_ACCEPTED = (
    "a service root (http://host:port), an OpenAI-compatible base (.../compatible-mode/v1, "
    "or .../v1 of a self-hosted server) or a DashScope native base (.../api/v1)"
)


class ConfigError(UsageError):
    """The configuration cannot be used as given (bad file, key in a config file, ...)."""


@dataclass(frozen=True, slots=True)
class BaseURLs:
    """The two base URLs one pasted ``base_url`` stands for (see the module docstring).

    ``native`` is ``None`` for the ``.../v1`` base of an OpenAI-compatible server (no native API
    there); ``root`` is ``None`` then too."""

    compat: str
    native: str | None
    root: str | None

    @classmethod
    def parse(cls, url: str) -> BaseURLs:
        """Classify ``url``; ``ConfigError`` naming the accepted forms when it is none of them."""
        given = url.strip()
        parsed = httpx.URL(given) if "://" in given else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(f"base_url {url!r} is not an http(s) URL; give {_ACCEPTED}")
        if parsed.query or parsed.fragment:
            raise ConfigError(f"base_url {url!r} has a query or fragment; give {_ACCEPTED}")
        base = given.rstrip("/")
        path = parsed.path.rstrip("/")
        if path.endswith(_ENDPOINT_SUFFIXES) or "/services/" in path:
            raise ConfigError(f"base_url {url!r} is an endpoint, not a base URL: give {_ACCEPTED}")
        if path.endswith(_COMPAT_SUFFIX):
            root = base[: -len(_COMPAT_SUFFIX)]
            return cls(compat=base, native=root + _NATIVE_SUFFIX, root=root)
        if path.endswith(_NATIVE_SUFFIX):
            root = base[: -len(_NATIVE_SUFFIX)]
            return cls(compat=root + _COMPAT_SUFFIX, native=base, root=root)
        if path.endswith("/v1"):
            return cls(compat=base, native=None, root=None)
        if path.endswith(_UNVERSIONED):
            raise ConfigError(f"base_url {url!r} lacks its version (/v1): give {_ACCEPTED}")
        return cls(compat=base + _COMPAT_SUFFIX, native=base + _NATIVE_SUFFIX, root=base)


class Settings(BaseSettings):
    """Where to send requests and how: region, wire mode, base URLs, key, catalog overrides."""

    model_config = SettingsConfigDict(
        env_prefix="QWENKIT_",
        extra="forbid",
        frozen=True,
        populate_by_name=True,
    )

    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("api_key", "QWENKIT_API_KEY", "DASHSCOPE_API_KEY"),
    )
    api_key_file: Path | None = None
    """A secrets file holding the key (first line); used when no key is set directly."""
    region: Region = Region.AP_SOUTHEAST_1
    mode: Mode = "compat"
    base_url: str | None = None
    """Where the service is, as users paste it: a root serving both modes (the emulator, the
    gateway), a ``.../compatible-mode/v1`` or a ``.../api/v1`` base (the other is derived), or the
    ``.../v1`` of an OpenAI-compatible server (compat mode only). Overrides the region."""
    compat_base_url: str | None = None
    """Exact OpenAI-compatible base URL (e.g. a vLLM server at ``http://localhost:8000/v1``)."""
    native_base_url: str | None = None
    workspace: str | None = None
    """``X-DashScope-WorkSpace`` for a non-default workspace."""
    catalog_file: Path | None = None
    """A TOML file merged over the packaged model catalog (models added, prices overridden)."""
    routes_file: Path | None = None
    """A TOML file merged over the packaged task routes."""
    store_url: str | None = None
    """One store for everything (``sqlite:///path``, ``postgresql://...``, ``redis://...``); the
    four URLs below override it per part. See ``qwenkit.storage``."""
    ledger_url: str | None = None
    """Where usage records go (SQLite or PostgreSQL)."""
    budgets_url: str | None = None
    """Where budget and rate-limit counters live (SQLite, PostgreSQL or Redis)."""
    cache_url: str | None = None
    """Where the response cache lives (SQLite, PostgreSQL or Redis)."""
    keys_url: str | None = None
    """Where virtual keys live (SQLite or PostgreSQL)."""
    budget_timezone: str = "UTC"
    """The time zone whose midnight resets daily budgets (an IANA name, e.g. ``Asia/Shanghai``)."""
    think_tag_in_prompt: bool = False
    """An OpenAI-compatible server whose chat template opens ``<think>`` in the prompt and which
    parses no reasoning: its answers hold the reasoning, then ``</think>``, then the answer.
    With thinking on, content before a ``</think>`` is taken as reasoning (and held until the
    tag, or the end, comes). See ``qwenkit.streaming.think_tags``, rule 2."""

    @field_validator("region", mode="before")
    @classmethod
    def _region_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            key = value.strip().lower()
            return REGION_ALIASES.get(key, key)
        return value

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Settings from code, env and a TOML file (``config_file`` or ``QWENKIT_CONFIG``)."""
        from_env = cls(**overrides)
        path = Path(config_file) if config_file is not None else _env_config_path()
        if path is None:
            return from_env
        file_values = read_config_file(path)
        explicit = {name: getattr(from_env, name) for name in from_env.model_fields_set}
        return cls(**{**file_values, **explicit})

    @property
    def endpoints(self) -> RegionEndpoints:
        return REGIONS[self.region]

    @property
    def base_urls(self) -> BaseURLs | None:
        """What ``base_url`` stands for (``None`` when not set); ``ConfigError`` if unusable."""
        return None if self.base_url is None else BaseURLs.parse(self.base_url)

    @property
    def compat_url(self) -> str:
        """The OpenAI-compatible base URL in force."""
        if self.compat_base_url:
            return self.compat_base_url.strip().rstrip("/")
        urls = self.base_urls
        return self.endpoints.compat if urls is None else urls.compat

    @property
    def native_url(self) -> str:
        """The DashScope native base URL in force (``.../api/v1``); ``ConfigError`` when
        ``base_url`` is an OpenAI-compatible server's ``.../v1`` (it has no native API)."""
        if self.native_base_url:
            return self.native_base_url.strip().rstrip("/")
        urls = self.base_urls
        if urls is None:
            return self.endpoints.native
        if urls.native is None:
            raise ConfigError(
                f"base_url {self.base_url!r} is an OpenAI-compatible base (.../v1): it serves "
                "mode='compat' only. For mode='native' give the service root, "
                ".../compatible-mode/v1 or .../api/v1, or set native_base_url"
            )
        return urls.native

    def url_for(self, mode: Mode) -> str:
        """The base URL of ``mode`` (``compat_url`` or ``native_url``)."""
        return self.native_url if mode == "native" else self.compat_url

    def resolved_api_key(self) -> str | None:
        """The key itself, from the setting or the secrets file. Never log what this returns."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_file is not None:
            try:
                text = self.api_key_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"cannot read api_key_file {self.api_key_file}: {exc.strerror}"
                ) from None
            key = text.strip().splitlines()[0].strip() if text.strip() else ""
            if not key:
                raise ConfigError(f"api_key_file {self.api_key_file} is empty")
            return key
        return None


def _env_config_path() -> Path | None:
    value = os.environ.get("QWENKIT_CONFIG")
    return Path(value) if value else None


def read_config_file(path: Path) -> dict[str, Any]:
    """The ``[qwenkit]`` table (or the top level) of a TOML config file, keys as settings names."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    table: Any = data.get("qwenkit", data)
    if not isinstance(table, Mapping):
        raise ConfigError(f"config file {path}: [qwenkit] must be a table")
    if "api_key" in table:
        raise ConfigError(
            f"config file {path} contains api_key: keys belong in the environment "
            "(DASHSCOPE_API_KEY) or in a secrets file named by api_key_file"
        )
    values = {str(k).replace("-", "_"): v for k, v in table.items()}
    base = path.parent
    for name in ("api_key_file", "catalog_file", "routes_file"):
        if isinstance(values.get(name), str):
            values[name] = (base / values[name]).expanduser()
    return values
