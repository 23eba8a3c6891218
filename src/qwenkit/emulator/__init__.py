"""``qwenkit emulate``: a local DashScope that speaks both wire formats.

The emulator answers the OpenAI-compatible chat route and the native text and multimodal
generation routes with deterministic answers, real token counts (the Qwen tokenizers), the
service's error bodies, context-cache usage, rate limits, faults, pacing and asynchronous tasks.
Tests, demos and benchmarks use it as their upstream, in process
(``httpx.AsyncClient(transport=httpx.ASGITransport(create_app()))``) or over HTTP
(``qwenkit emulate``).

- ``create_app(config=None, *, scenarios=None)``: the ASGI app (see ``app``);
- ``EmulatorConfig`` / ``load_config(path, **overrides)``: its configuration (see ``config``).

Needs the ``emulator`` extra (starlette, uvicorn, pyyaml).
"""

from qwenkit.emulator.app import create_app
from qwenkit.emulator.config import EmulatorConfig, load_config

__all__ = ["EmulatorConfig", "create_app", "load_config"]
