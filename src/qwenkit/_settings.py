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
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

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


class ConfigError(UsageError):
    """The configuration cannot be used as given (bad file, key in a config file, ...)."""


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
    """A service root serving both modes (the emulator, the gateway): ``{base_url}/compatible-mode/v1``
    and ``{base_url}/api/v1``. Overrides the region."""
    compat_base_url: str | None = None
    """Exact OpenAI-compatible base URL (e.g. a vLLM server at ``http://localhost:8000/v1``)."""
    native_base_url: str | None = None
    workspace: str | None = None
    """``X-DashScope-WorkSpace`` for a non-default workspace."""
    catalog_file: Path | None = None
    """A TOML file merged over the packaged model catalog (models added, prices overridden)."""
    routes_file: Path | None = None
    """A TOML file merged over the packaged task routes."""

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
    def compat_url(self) -> str:
        """The OpenAI-compatible base URL in force."""
        if self.compat_base_url:
            return self.compat_base_url.rstrip("/")
        if self.base_url:
            return f"{self.base_url.rstrip('/')}/compatible-mode/v1"
        return self.endpoints.compat

    @property
    def native_url(self) -> str:
        """The DashScope native base URL in force (``.../api/v1``)."""
        if self.native_base_url:
            return self.native_base_url.rstrip("/")
        if self.base_url:
            return f"{self.base_url.rstrip('/')}/api/v1"
        return self.endpoints.native

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
