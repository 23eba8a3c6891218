"""``qwenkit emulate``: run the local DashScope emulator over HTTP (uvicorn).

The flags cover the common knobs; everything else is in the config file (YAML, JSON or TOML, see
``qwenkit.emulator.config``) or can be changed at run time through ``/_emulator/config``. Flags
win over the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from qwenkit.emulator import EmulatorConfig

__all__ = ["banner", "build_config", "emulate", "sdk_examples"]


def build_config(
    config_file: str | Path | None,
    *,
    ttft_ms: float | None = None,
    tokens_per_second: float | None = None,
    seed: int | None = None,
) -> EmulatorConfig:
    """The ``EmulatorConfig`` of the file (or the defaults) with the flags laid over it."""
    from qwenkit.emulator import EmulatorConfig, load_config
    from qwenkit.emulator.state import deep_merge

    config = load_config(config_file)
    patch: dict[str, Any] = {}
    if ttft_ms is not None:
        patch.setdefault("pacing", {})["ttft_ms"] = ttft_ms
    if tokens_per_second is not None:
        patch.setdefault("pacing", {})["tokens_per_second"] = tokens_per_second
    if seed is not None:
        patch["faults"] = {"seed": seed}
    if not patch:
        return config
    return EmulatorConfig.model_validate(deep_merge(config.model_dump(mode="json"), patch))


def banner(host: str, port: int) -> str:
    """What ``qwenkit emulate`` prints at startup: the base URLs and how to point the SDKs."""
    root = f"http://{host}:{port}"
    compat, native = f"{root}/compatible-mode/v1", f"{root}/api/v1"
    return f"""qwenkit emulator on {root}
  OpenAI-compatible base URL: {compat}
  DashScope native base URL:  {native}
  control API:                {root}/_emulator/health  (config, requests, reset, scenarios)
  API key: any "sk-..." (unless the config lists keys)

{sdk_examples(compat, native, "sk-emulator")}"""


def sdk_examples(compat: str, native: str, key: str) -> str:
    """How to point the ``openai`` and ``dashscope`` SDKs at a server with these base URLs."""
    return f"""openai SDK:
  from openai import OpenAI
  client = OpenAI(api_key="{key}", base_url="{compat}")
  client.chat.completions.create(model="qwen-plus", messages=[{{"role": "user", "content": "Hi"}}])

dashscope SDK:
  import dashscope
  dashscope.base_http_api_url = "{native}"
  dashscope.Generation.call(api_key="{key}", model="qwen-plus",
                            messages=[{{"role": "user", "content": "Hi"}}], result_format="message")
"""


def emulate(
    *,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8400, "--port", help="Port to listen on."),
    config: str | None = typer.Option(
        None, "--config", help="Emulator config file (YAML, JSON or TOML).", show_default=False
    ),
    scenarios: str | None = typer.Option(
        None, "--scenarios", help="Scenario rules file (YAML or JSON).", show_default=False
    ),
    ttft_ms: float | None = typer.Option(
        None, "--ttft-ms", min=0, help="Time to first token, in milliseconds.", show_default=False
    ),
    tokens_per_second: float | None = typer.Option(
        None, "--tokens-per-second", min=0.001, help="Output speed.", show_default=False
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Seed of answers and faults (faults.seed).", show_default=False
    ),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
) -> None:
    """Run a local DashScope (OpenAI-compatible and native wire formats) for tests and demos."""
    import uvicorn

    from qwenkit.emulator import create_app

    settings = build_config(config, ttft_ms=ttft_ms, tokens_per_second=tokens_per_second, seed=seed)
    app = create_app(settings, scenarios=Path(scenarios) if scenarios else None)
    typer.echo(banner(host, port))
    uvicorn.run(app, host=host, port=port, log_level=log_level, ws="none", lifespan="on")
