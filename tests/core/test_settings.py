"""Settings: precedence of code > env > file, region aliases and URLs, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenkit._settings import REGIONS, ConfigError, Region, Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DASHSCOPE_API_KEY",
        "QWENKIT_API_KEY",
        "QWENKIT_CONFIG",
        "QWENKIT_REGION",
        "QWENKIT_MODE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_international_compat() -> None:
    s = Settings()
    assert s.region is Region.AP_SOUTHEAST_1
    assert s.mode == "compat"
    assert s.compat_url == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    assert s.native_url == "https://dashscope-intl.aliyuncs.com/api/v1"
    assert s.resolved_api_key() is None


@pytest.mark.parametrize(
    ("alias", "region"),
    [
        ("cn", Region.CN_BEIJING),
        ("intl", Region.AP_SOUTHEAST_1),
        ("US", Region.US_EAST_1),
        ("hk", Region.CN_HONGKONG),
    ],
)
def test_region_aliases(alias: str, region: Region) -> None:
    assert Settings(region=alias).region is region


def test_every_region_has_both_urls() -> None:
    for region, endpoints in REGIONS.items():
        s = Settings(region=region)
        assert s.compat_url == endpoints.compat
        assert s.native_url == endpoints.native
        assert s.compat_url.endswith("/compatible-mode/v1")
        assert s.native_url.endswith("/api/v1")
    assert REGIONS[Region.CN_HONGKONG].native_confirmed is False


def test_base_url_serves_both_modes_and_exact_urls_win() -> None:
    s = Settings(base_url="http://127.0.0.1:8400/")
    assert s.compat_url == "http://127.0.0.1:8400/compatible-mode/v1"
    assert s.native_url == "http://127.0.0.1:8400/api/v1"
    s = Settings(base_url="http://x", compat_base_url="http://localhost:8000/v1/")
    assert s.compat_url == "http://localhost:8000/v1"


def test_api_key_from_standard_env_var_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-secret-value-123")
    s = Settings()
    assert s.resolved_api_key() == "sk-secret-value-123"
    for text in (repr(s), str(s), str(s.model_dump()), s.model_dump_json()):
        assert "sk-secret-value-123" not in text


def test_qwenkit_api_key_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENKIT_API_KEY", "sk-q")
    assert Settings().resolved_api_key() == "sk-q"


def test_file_then_env_then_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "qwenkit.toml"
    config.write_text('[qwenkit]\nregion = "cn-beijing"\nmode = "native"\nworkspace = "ws_1"\n')
    assert Settings.load(config).mode == "native"
    monkeypatch.setenv("QWENKIT_MODE", "compat")
    s = Settings.load(config)
    assert s.mode == "compat"  # env beats file
    assert s.region is Region.CN_BEIJING  # file beats default
    assert s.workspace == "ws_1"
    assert Settings.load(config, region="us").region is Region.US_EAST_1  # code beats all
    monkeypatch.setenv("QWENKIT_CONFIG", str(config))
    assert Settings.load().workspace == "ws_1"


def test_key_in_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('api_key = "sk-leak"\n')
    with pytest.raises(ConfigError, match="api_key_file"):
        Settings.load(config)


def test_secrets_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("sk-from-file\n")
    config = tmp_path / "c.toml"
    config.write_text('api_key_file = "key"\n')
    assert Settings.load(config).resolved_api_key() == "sk-from-file"


def test_bad_config_files_are_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("region = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(broken)
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.load(tmp_path / "missing.toml")
    empty_key = tmp_path / "empty"
    empty_key.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        Settings(api_key_file=empty_key).resolved_api_key()


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(ValueError, match="regoin"):
        Settings(regoin="cn")  # type: ignore[call-arg]  # the typo is the point of the test
