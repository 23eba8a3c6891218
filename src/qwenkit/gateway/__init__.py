"""The gateway (``qwenkit serve``): an OpenAI- and DashScope-compatible server that runs every
request through the SDK's pipeline, with virtual keys, budgets, the response cache and the usage
ledger of ``qwenkit.storage``. Needs the ``gateway`` extra (starlette, uvicorn)."""

from __future__ import annotations

from qwenkit.gateway._app import Gateway, create_app
from qwenkit.gateway._config import GatewayConfig, ReasoningMode

__all__ = ["Gateway", "GatewayConfig", "ReasoningMode", "create_app"]
