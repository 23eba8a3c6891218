"""The dashboard's pages over the reports API: ``Dashboard`` (overview, endpoints, models, keys
with their revoke flow, the request log), each behind the sign-in (``_signin``), rendered by
``_render`` with charts from ``_charts``."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from qwenkit.gateway.dashboard import _charts as charts
from qwenkit.gateway.dashboard._data import Window, log_page, range_report, series, window
from qwenkit.gateway.dashboard._render import (
    HERE,
    PAGES,
    SECURITY_HEADERS,
    environment,
    figure,
    html_page,
    message_page,
    money,
    when,
)
from qwenkit.gateway.dashboard._session import Session
from qwenkit.gateway.dashboard._signin import SignIn
from qwenkit.storage._status import budget_states

if TYPE_CHECKING:
    from qwenkit.storage import Store

__all__ = ["Dashboard", "GatewayLike"]

WIDTH = 1100
"""Chart width in the page's coordinates (the SVG scales down on a narrower screen)."""
_bar = functools.partial(charts.bar_chart, width=WIDTH)
_line = functools.partial(charts.line_chart, width=WIDTH)
_share = functools.partial(charts.share_chart, width=WIDTH)
_FILTERS = ("endpoint", "model", "key_id", "status")


class GatewayLike(Protocol):
    """What the dashboard needs of ``qwenkit.gateway._app.Gateway``."""

    @property
    def store(self) -> Store: ...

    @property
    def lint_findings(self) -> Mapping[str, str]: ...

    @property
    def master_key(self) -> str | None: ...


class Dashboard:
    """The pages of one gateway (see the module docstring)."""

    def __init__(self, gateway: GatewayLike) -> None:
        self.gateway = gateway
        self.env = environment()
        self.signin = SignIn(gateway.master_key, self.env)

    # -- pages -------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        session, span = self.signin.session(request), window(request.query_params.get("range"))
        if session is None:
            return self.signin.to_login()
        ledger = self._ledger()
        report = await anyio.to_thread.run_sync(lambda: range_report(ledger, span, "bucket"))
        daily = [s for s in await self._budget_states() if s.kind == "daily_cost"]
        names = await self._scope_names()
        labels = _short_labels(span)
        rows = report.rows
        currency = report.total.currency or ""
        by_limit: dict[Decimal, list[str]] = {}
        for state in sorted(daily, key=lambda s: -s.spent):
            by_limit.setdefault(state.limit, []).append(names.get(state.scope, state.scope))
        references = [  # one line per limit: budgets of the same size share it
            charts.Reference(f"{', '.join(scopes[:3])}{' …' if len(scopes) > 3 else ''}: "
                             f"{money(limit)}/day", float(limit))
            for limit, scopes in list(by_limit.items())[:6]
        ]  # fmt: skip
        drawn = [
            _bar(
                "spend", f"Spend per {span.bucket} ({currency or 'no prices'})", labels,
                [charts.Series("spend", series(span, rows, "cost"))],
                unit=currency, references=references,
            ),
            _bar(
                "requests", f"Requests per {span.bucket}", labels,
                [charts.Series("requests", series(span, rows, "requests"))],
            ),
            _line(
                "errors", "Error rate", labels,
                [charts.Series("error rate", series(span, rows, "error_rate"))], percent=True,
            ),
            _line(
                "latency", "Latency", labels,
                [charts.Series("p50", series(span, rows, "latency_p50")),
                 charts.Series("p95", series(span, rows, "latency_p95"))], unit="s",
            ),
            _line(
                "ttft", "Time to first token", labels,
                [charts.Series("p50", series(span, rows, "ttft_p50")),
                 charts.Series("p95", series(span, rows, "ttft_p95"))], unit="s",
            ),
            _bar(
                "budgets", "Daily budgets today: spent and reserved, of the limit",
                [names.get(state.scope, state.scope) for state in daily],
                [charts.Series("spent", [_part(s.spent, s.limit) for s in daily]),
                 charts.Series("reserved", [_part(s.reserved, s.limit) for s in daily])],
                stacked=True, percent=True, references=[charts.Reference("limit", 1.0)],
            ),
        ]  # fmt: skip
        return self._page(
            request, "overview.html", "Overview", session, span,
            charts=[figure(chart) for chart in drawn], total=report.total,
        )  # fmt: skip

    async def endpoints(self, request: Request) -> Response:
        session, span = self.signin.session(request), window(request.query_params.get("range"))
        if session is None:
            return self.signin.to_login()
        ledger = self._ledger()
        report = await anyio.to_thread.run_sync(lambda: range_report(ledger, span, "endpoint"))
        growth = {entry.endpoint: entry for entry in report.week_over_week}
        lint = self.gateway.lint_findings
        rows = []
        for row in report.rows:
            change = growth.get(row.group)
            rows.append({
                "name": row.group or "(untagged)",
                "requests": row.requests,
                "per_request": row.prompt_tokens_per_request,
                "growth": _growth(change),
                "bloat": bool(change and change.bloat),
                "prefix": row.prefix_cache_hit_rate,
                "edge": row.edge_cache_hit_rate,
                "error_rate": row.error_rate,
                "cost": row.cost,
                "currency": row.currency,
                "lint": lint.get(row.group or ""),
            })  # fmt: skip
        names = [row.group or "(untagged)" for row in report.rows]
        weeks = [growth.get(row.group) for row in report.rows]
        drawn = [
            _bar(
                "prompt-growth", "Prompt tokens per request: this week and the week before",
                names,
                [charts.Series("this week", [g.this_week if g else None for g in weeks]),
                 charts.Series("last week", [g.last_week if g else None for g in weeks])],
            ),
            _bar(
                "cache-hits", "Cache hit rates", names,
                [charts.Series("prefix cache", [r.prefix_cache_hit_rate for r in report.rows]),
                 charts.Series("edge cache", [r.edge_cache_hit_rate for r in report.rows])],
                percent=True,
            ),
        ]  # fmt: skip
        return self._page(
            request, "endpoints.html", "Endpoints", session, span,
            charts=[figure(chart) for chart in drawn], rows=rows,
        )  # fmt: skip

    async def models(self, request: Request) -> Response:
        session, span = self.signin.session(request), window(request.query_params.get("range"))
        if session is None:
            return self.signin.to_login()
        ledger = self._ledger()
        report = await anyio.to_thread.run_sync(lambda: range_report(ledger, span, "model"))
        total_cost = float(report.total.cost) or 0.0
        rows = [
            {
                "name": row.group or "(unknown)",
                "requests": row.requests,
                "prompt": row.prompt_tokens,
                "completion": row.completion_tokens,
                "cached": row.cached_tokens,
                "reasoning": row.reasoning_tokens,
                "cost": row.cost,
                "currency": row.currency,
                "share": float(row.cost) / total_cost if total_cost else None,
            }
            for row in report.rows
        ]
        names = [row.group or "(unknown)" for row in report.rows]
        tokens = [
            charts.Series(label, [float(getattr(row, field)) for row in report.rows])
            for label, field in (
                ("prompt", "prompt_tokens"), ("completion", "completion_tokens"),
                ("cached", "cached_tokens"), ("reasoning", "reasoning_tokens"),
            )
        ]  # fmt: skip
        shares = [(row.group or "(unknown)", float(row.cost)) for row in report.rows if row.cost]
        drawn = [
            _bar("tokens", "Tokens by kind", names, tokens),
            _share("cost-share", "Share of the cost", shares, unit=report.total.currency or ""),
        ]
        return self._page(
            request, "models.html", "Models", session, span,
            charts=[figure(chart) for chart in drawn], rows=rows,
        )  # fmt: skip

    async def keys(self, request: Request) -> Response:
        session, span = self.signin.session(request), window(request.query_params.get("range"))
        if session is None:
            return self.signin.to_login()
        keys = self.gateway.store.keys
        listed = await keys.list() if keys is not None else []
        states = {(s.scope, s.kind): s for s in await self._budget_states()}
        rows = []
        for info in listed:
            budget = states.get((f"key:{info.id}", "daily_cost"))
            limits = info.limits
            rates = ", ".join(
                part
                for part in (
                    f"{limits.requests_per_minute} rpm" if limits.requests_per_minute else "",
                    f"{limits.tokens_per_minute} tpm" if limits.tokens_per_minute else "",
                )
                if part
            )
            rows.append({
                "id": info.id,
                "name": info.name,
                "environment": info.environment,
                "budget": budget,
                "resets": when(budget.resets_at) if budget else None,
                "rates": rates,
                "last_used": when(info.last_used_at),
            })  # fmt: skip
        return self._page(
            request, "keys.html", "Keys", session, span, keys=rows,
            flash=request.query_params.get("revoked") and (
                f"Key {request.query_params['revoked']} revoked."
            ),
        )  # fmt: skip

    async def revoke_form(self, request: Request) -> Response:
        session, span = self.signin.session(request), window(None)
        if session is None:
            return self.signin.to_login()
        info = await self._key(request.path_params["key_id"])
        if info is None:
            return message_page(self.env, "No such active key.", 404, "/dashboard/keys")
        return self._page(request, "revoke.html", f"Revoke {info.name}?", session, span, key=info)

    async def revoke(self, request: Request) -> Response:
        session = self.signin.session(request)
        if session is None:
            return self.signin.to_login()
        form = await request.form()
        if not self.signin.csrf_ok(session, form.get("csrf")):
            return message_page(
                self.env, "This form expired: reload the page.", 403, "/dashboard/keys"
            )
        keys = self.gateway.store.keys
        key_id = request.path_params["key_id"]
        if keys is None or not await keys.revoke(key_id):
            return message_page(self.env, "No such active key.", 404, "/dashboard/keys")
        return RedirectResponse("/dashboard/keys?" + urlencode({"revoked": key_id}), 303)

    async def request_log(self, request: Request) -> Response:
        session, span = self.signin.session(request), window(request.query_params.get("range"))
        if session is None:
            return self.signin.to_login()
        filters = {name: request.query_params.get(name) or None for name in _FILTERS}
        ledger = self._ledger()

        def read() -> list[Any]:
            return log_page(
                ledger,
                endpoint=filters["endpoint"],
                model=filters["model"],
                key_id=filters["key_id"],
                status=filters["status"],
            )

        records = await anyio.to_thread.run_sync(read)
        records = [r for r in records if r.timestamp >= span.since]
        return self._page(
            request, "requests.html", "Requests", session, span,
            records=records, filters=filters, extra_query=_query(filters),
        )  # fmt: skip

    async def stylesheet(self, request: Request) -> Response:
        response = FileResponse(HERE / "static" / "dashboard.css", media_type="text/css")
        response.headers.update({**SECURITY_HEADERS, "cache-control": "max-age=3600"})
        return response

    # -- helpers -----------------------------------------------------------------------------

    async def _key(self, key_id: str) -> Any:
        keys = self.gateway.store.keys
        info = await keys.get(key_id) if keys is not None else None
        return info if info is not None and info.active else None

    async def _scope_names(self) -> dict[str, str]:
        """Budget scopes by their readable names (``key:ab12`` → ``billing (key ab12)``)."""
        keys = self.gateway.store.keys
        listed = await keys.list() if keys is not None else []
        names = {f"key:{info.id}": f"{info.name} (key {info.id})" for info in listed}
        for info in listed:
            if info.environment:
                names[f"env:{info.environment}"] = f"environment {info.environment}"
        return names

    async def _budget_states(self) -> list[Any]:
        store = self.gateway.store
        if store.keys is None or store.budgets is None:
            return []
        return await budget_states(store.keys, store.budgets)

    def _ledger(self) -> Any:
        return self.gateway.store.urls.get("ledger")

    def _page(
        self, request: Request, template: str, title: str, session: Session, span: Window,
        **context: Any,
    ) -> Response:  # fmt: skip
        context.setdefault("extra_query", "")
        return html_page(
            self.env, template, title=title, signed_in=True, pages=PAGES, here=request.url.path,
            span=span, ranges=("24h", "7d", "30d"), csrf=self.signin.csrf(session), **context,
        )  # fmt: skip


def _query(filters: Mapping[str, str | None]) -> str:
    """The filters as the rest of a query string (``&endpoint=a``; autoescaped in the page)."""
    chosen = {name: value for name, value in filters.items() if value}
    return "&" + urlencode(chosen) if chosen else ""


def _short_labels(span: Window) -> list[str]:
    if span.bucket == "hour":
        return [label[11:16] for label in span.labels]  # 14:00
    return [label[5:] for label in span.labels]  # 12-07


def _part(amount: Decimal, limit: Decimal) -> float | None:
    return float(amount / limit) if limit else None


def _growth(change: Any) -> str:
    if change is None:
        return ""
    if change.last_week is None or change.ratio is None:
        return f"{change.this_week:.0f} (new this week)"
    return f"{change.this_week:.0f} / {change.last_week:.0f} ({change.ratio:.2f}x)"
