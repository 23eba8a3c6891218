"""The gateway's logs: an access line per request and, with ``--log-format json``, one JSON object
per line on stderr for everything (qwenkit's loggers, uvicorn's, and warnings of any library).

- ``AccessLog`` is a usage sink of the gateway's client: every usage record (one per request,
  rejected ones included) becomes one INFO line on ``qwenkit.gateway.access`` whose fields are
  ``access_fields(record)``: the request ids, method and path, key id (never the key), environment, endpoint tag,
  model, task, status, HTTP status, error code, latency and time to first token in ms, tokens,
  cost, cache hit, attempts and finish reason. Never the prompt, even when prompt capture is on.
- ``request_id`` (a context variable) holds the gateway's id of the request being served (the
  routes set it with ``bind_request_id``); ``JsonFormatter`` adds it to every line logged while
  that request runs, with the OpenTelemetry ``trace_id``/``span_id`` when a span is current.
- ``logging_config(level)`` is the ``logging.config.dictConfig`` of ``--log-format json``, given
  to uvicorn as its ``log_config`` (so each ``--workers`` process applies it too): one stderr
  handler with the JSON formatter, uvicorn's and qwenkit's loggers at ``level``, the access
  logger at INFO (uvicorn's own access log is turned off in favour of it), the root logger at
  WARNING (third-party debug output can carry headers), and ``qwenkit.reasoning`` held at WARNING
  (the SDK's reasoning side channel can contain what users wrote; the gateway's
  ``reasoning = "log"`` mode logs on ``qwenkit.gateway.reasoning`` instead).

The formatter is hand-written (the standard library has everything: ~30 lines) rather than
python-json-logger: one dependency less, and the fields are exactly ours.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from qwenkit._core.usage import UsageRecord

__all__ = [
    "ACCESS_LOGGER",
    "AccessLog",
    "JsonFormatter",
    "access_fields",
    "bind_request_id",
    "logging_config",
    "request_id",
]

ACCESS_LOGGER = "qwenkit.gateway.access"
FIELDS = "qwenkit_fields"
"""The ``extra`` key whose dict ``JsonFormatter`` merges into the line (no other extra is)."""

request_id: ContextVar[str | None] = ContextVar("qwenkit_gateway_request_id", default=None)
_route: ContextVar[tuple[str, str] | None] = ContextVar("qwenkit_gateway_route", default=None)


def bind_request_id(value: str, method: str | None = None, path: str | None = None) -> None:
    """Name the request being served (its task's lines carry it from now on) and, for its
    access line, its method and path (never its query string)."""
    request_id.set(value)
    if method is not None and path is not None:
        _route.set((method, path))


def access_fields(record: UsageRecord) -> dict[str, Any]:
    """The access line's fields of one usage record (never its prompt)."""
    method, path = _route.get() or (None, None)
    return {
        "request_id": request_id.get(),
        "method": method,
        "path": path,
        "upstream_request_id": record.request_id,
        "key_id": record.key_id,
        "environment": record.environment,
        "endpoint": record.endpoint,
        "model": record.model,
        "task": record.task,
        "stream": record.stream,
        "status": record.status,
        "http_status": record.http_status,
        "error_code": record.error_code,
        "latency_ms": round(record.latency_s * 1000, 3),
        "ttft_ms": None if record.ttft_s is None else round(record.ttft_s * 1000, 3),
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cached_tokens": record.cached_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "cost": None if record.cost is None else str(record.cost),
        "currency": record.currency,
        "cache_hit": record.cache_hit,
        "attempts": record.attempts,
        "finish_reason": record.finish_reason,
    }


class AccessLog:
    """The usage sink that writes the access line of each request; see the module docstring."""

    def __init__(self, logger: str | logging.Logger = ACCESS_LOGGER) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger

    def emit(self, record: UsageRecord) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        fields = access_fields(record)
        code = record.http_status or record.error_code or ""
        self.logger.info(
            "%s %s %s %.1f ms",
            record.model or "-",
            record.status,
            code,
            fields["latency_ms"],
            extra={FIELDS: fields},
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    ``request_id`` when known, ``trace_id``/``span_id`` when a span is current, the fields of
    ``extra={FIELDS: {...}}``, and ``exc_type``/``exception`` (the traceback) on errors."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        line.update(_trace_ids())
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _trace_ids() -> dict[str, str]:
    trace = sys.modules.get("opentelemetry.trace")  # never imported just to log
    if trace is None:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def logging_config(level: str = "warning", *, access: bool = True) -> dict[str, Any]:
    """The ``dictConfig`` of the JSON format; see the module docstring."""
    level = level.upper()
    handler = {"handlers": ["stderr"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {**handler, "level": level},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {**handler, "level": level},
            "qwenkit": {**handler, "level": level},
            ACCESS_LOGGER: {"level": "INFO" if access else "WARNING"},
            "qwenkit.reasoning": {"level": "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
