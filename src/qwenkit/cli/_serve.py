"""``qwenkit serve``: the gateway over HTTP (uvicorn).

The upstream is the SDK's settings (``DASHSCOPE_API_KEY``, ``QWENKIT_REGION``, ``QWENKIT_MODE``,
``QWENKIT_BASE_URL``...). With no key and no base URL configured, the emulator is mounted in
process as the upstream (a demo, and what ``make run`` starts), and the banner says so.
``[gateway] upstream = "openai-compatible"`` (``QWENKIT_GATEWAY_UPSTREAM``) fronts a self-hosted
server (vLLM, SGLang, llama.cpp) at ``QWENKIT_BASE_URL`` instead. The store
is ``--store``/``[gateway] store_url``/``QWENKIT_STORE_URL``, else the embedded SQLite file in the
qwenkit home.

The master key (the admin API's, and a key that may call the model routes) is
``QWENKIT_MASTER_KEY``; without it, one is generated on the first start, written to
``master.key`` next to the embedded store (mode 0600) and printed once; later starts read that
file and print only where it is. With ``--workers N`` uvicorn runs N processes, each with its own
gateway (and its own ledger writer) built by ``app_factory`` from ``QWENKIT_SERVE_*`` variables,
and ``/metrics`` of any of them reports all of them (``PROMETHEUS_MULTIPROC_DIR``, a fresh
directory unless given).

``--log-format json`` (``QWENKIT_LOG_FORMAT``, else ``[gateway] log_format``) logs one JSON object
per line on stderr, with an access line per request (``qwenkit.gateway._logging``); traces are
exported when the ``OTEL_*`` variables or ``[gateway] otel`` say so
(``qwenkit.gateway._telemetry``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from qwenkit.cli._emulate import sdk_examples

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["app_factory", "banner", "build_app", "serve"]

_CONFIG_ENV = "QWENKIT_SERVE_CONFIG"
_STORE_ENV = "QWENKIT_SERVE_STORE"
_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _master_key(store_url: str | None) -> tuple[str, str]:
    """The master key and how it was found (``env``, ``file <path>``, ``new <path>``)."""
    given = os.environ.get("QWENKIT_MASTER_KEY")
    if given:
        return given, "env"
    from qwenkit.storage._urls import default_store_url, parse_store_url

    url = parse_store_url(store_url or default_store_url(), part="keys")
    home = Path(url.sqlite_path).parent if url.backend == "sqlite" else _home()
    path = home / "master.key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), f"file {path}"
    home.mkdir(parents=True, exist_ok=True)
    key = "qk-master-" + secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key, f"new {path}"


def _home() -> Path:
    from qwenkit.storage._urls import default_store_url, parse_store_url

    return Path(parse_store_url(default_store_url(), part="keys").sqlite_path).parent


def build_app(config_file: str | None, store: str | None) -> tuple[Starlette, dict[str, str]]:
    """The gateway app and what the banner reports (upstream, store, master key source)."""
    import httpx

    from qwenkit._settings import ConfigError, Settings
    from qwenkit.gateway import Gateway, GatewayConfig, create_app

    settings = Settings.load()
    store_url = store or os.environ.get("QWENKIT_STORE_URL")
    config = GatewayConfig.load(config_file, store_url=store_url)
    master, source = _master_key(config.store_url)
    config = GatewayConfig.model_validate({**config.model_dump(), "master_key": master})
    facts = {"master": source}
    contexts: list[Any] = []
    http_client = None
    configured = (settings.base_url, settings.compat_base_url, settings.native_base_url)
    if config.upstream == "openai-compatible":
        if not (settings.base_url or settings.compat_base_url):
            raise ConfigError(
                "upstream = openai-compatible needs the server's URL: set QWENKIT_BASE_URL "
                "(e.g. http://127.0.0.1:8080/v1)"
            )
        facts["upstream"] = f"OpenAI-compatible server ({settings.url_for('compat')})"
    elif settings.resolved_api_key() is None and not any(configured):
        from qwenkit.emulator import create_app as emulator_app
        from qwenkit.testing import StreamingASGITransport

        emulator = emulator_app()
        http_client = httpx.AsyncClient(transport=StreamingASGITransport(emulator))
        settings = Settings.load(api_key="sk-emulator-in-process", base_url="http://emulator")
        contexts.append(lambda: emulator.router.lifespan_context(emulator))
        facts["upstream"] = "the emulator, in process (no DASHSCOPE_API_KEY set)"
    else:
        facts["upstream"] = f"DashScope {settings.mode} ({settings.url_for(settings.mode)})"
    gateway = Gateway(config, settings=settings, http_client=http_client)
    urls = {str(url) for url in gateway.store.urls.values()}
    if len(urls) == 1:
        facts["store"] = urls.pop()
    else:
        facts["store"] = ", ".join(f"{part}: {url}" for part, url in gateway.store.urls.items())
    if http_client is not None:
        contexts.append(lambda: _closing(http_client))
    if master.startswith("qk-master-") and source.startswith("new"):
        facts["master_key"] = master
    return create_app(gateway, contexts=contexts), facts


class _closing:
    def __init__(self, client: Any) -> None:
        self.client = client

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


def app_factory() -> Starlette:
    """The app of one uvicorn worker (``--workers``)."""
    app, _ = build_app(os.environ.get(_CONFIG_ENV) or None, os.environ.get(_STORE_ENV) or None)
    return app


def banner(host: str, port: int, facts: dict[str, str]) -> str:
    """What ``qwenkit serve`` prints: where it listens, its upstream and store, how to call it."""
    root = f"http://{host}:{port}"
    compat, native = f"{root}/compatible-mode/v1", f"{root}/api/v1"
    source = facts["master"]
    if "master_key" in facts:
        master = f"master key (shown once, kept in {source[4:]}): {facts['master_key']}"
    elif source == "env":
        master = "master key: QWENKIT_MASTER_KEY"
    else:
        master = f"master key: in {source[5:]}"
    return f"""qwenkit gateway on {root}
  upstream: {facts["upstream"]}
  store:    {facts["store"]}
  {master}
  OpenAI-compatible base URL: {compat}
  DashScope native base URL:  {native}
  Dashboard:                  {root}/dashboard (sign in with the master key)

Make a key for your app:  qwenkit keys create my-app --env dev --daily-budget 5

{sdk_examples(compat, native, "qk-...")}
curl:
  curl {compat}/chat/completions -H "Authorization: Bearer qk-..." \\
    -H "Content-Type: application/json" \\
    -d '{{"model": "qwen-plus", "messages": [{{"role": "user", "content": "Hi"}}]}}'
"""


def serve(
    *,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    config: str | None = typer.Option(
        None, "--config", help="Gateway config file (TOML, a [gateway] table).", show_default=False
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Store URL (default: QWENKIT_STORE_URL, else the embedded SQLite).",
        show_default=False,
    ),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
    log_format: str | None = typer.Option(
        None,
        "--log-format",
        envvar="QWENKIT_LOG_FORMAT",
        help="text (uvicorn's) or json (one object per line on stderr, an access line per "
        "request). Default: [gateway] log_format, else text.",
        show_default=False,
    ),
) -> None:
    """Run the gateway: an OpenAI- and DashScope-compatible server in front of Qwen."""
    import uvicorn

    logs = _log_options(log_format, config, log_level)
    app, facts = build_app(config, store)
    typer.echo(banner(host, port, facts))
    if workers == 1:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            ws="websockets-sansio",
            lifespan="on",
            **logs,
        )
        return
    os.environ[_CONFIG_ENV] = config or ""
    os.environ[_STORE_ENV] = store or ""
    with _metrics_directory():
        uvicorn.run(
            "qwenkit.cli._serve:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            ws="websockets-sansio",
            lifespan="on",
            **logs,
        )


def _log_options(log_format: str | None, config_file: str | None, level: str) -> dict[str, Any]:
    """uvicorn's logging options for the format (the flag, else the config's; text: uvicorn's
    own). JSON is applied here already, so what the gateway logs while starting is JSON too."""
    if log_format is None:
        from qwenkit.gateway import GatewayConfig

        log_format = GatewayConfig.load(config_file).log_format
    if log_format == "text":
        return {}
    if log_format != "json":
        raise typer.BadParameter("must be text or json", param_hint="--log-format")
    import logging.config

    from qwenkit.gateway._logging import logging_config

    log_config = logging_config(level)
    logging.config.dictConfig(log_config)
    return {"log_config": log_config, "access_log": False}


@contextmanager
def _metrics_directory() -> Iterator[None]:
    """``PROMETHEUS_MULTIPROC_DIR`` for the workers: a fresh directory, removed when they
    stop (values of an earlier run must not be added in). One given in the environment is
    used as it is; the operator owns it (prometheus-client asks that it be emptied between
    runs); this process's own gateway, built for the banner and never started, is marked dead
    in it so its gauges do not count."""
    if os.environ.get(_METRICS_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
        yield
        return
    folder = tempfile.mkdtemp(prefix="qwenkit-metrics-")
    os.environ[_METRICS_ENV] = folder
    try:
        yield
    finally:
        del os.environ[_METRICS_ENV]
        shutil.rmtree(folder, ignore_errors=True)
