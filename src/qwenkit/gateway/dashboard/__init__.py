"""The gateway's dashboard: where the money and the tokens go, at a glance (``GET /dashboard``).

Server-rendered HTML behind the master key (``_session``: a sign-in form, a signed ``HttpOnly``
session cookie, CSRF tokens on every form, wrong keys rate-limited), built on the reports API
(``_data``), with charts drawn as inline SVG on the server (``_charts``, ``_chart_text``): no
JavaScript, no CDN, works offline under a Content-Security-Policy that allows no script
(``_render``); the pages themselves are ``_views``, the sign-in ``_signin``.

Pages: overview (spend per hour or day against the daily budgets, requests, error rate, latency
and time to first token), endpoints (prompt tokens per request week over week with bloat flags,
prefix-cache and edge-cache hit rates, the prompt-cache lint's findings), models (tokens by
kind, cost and its share), keys (today's budget, reset time, last use, revoke with a
confirmation) and the request log with filters; each over 24h, 7d or 30d.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from qwenkit.gateway.dashboard._views import Dashboard, GatewayLike

__all__ = ["dashboard_routes"]


def dashboard_routes(gateway: GatewayLike) -> list[BaseRoute]:
    """The routes of the dashboard of ``gateway``."""
    pages = Dashboard(gateway)
    return [
        Route("/dashboard/login", pages.signin.form, methods=["GET"]),
        Route("/dashboard/login", pages.signin.submit, methods=["POST"]),
        Route("/dashboard/logout", pages.signin.sign_out, methods=["POST"]),
        Route("/dashboard", pages.overview, methods=["GET"]),
        Route("/dashboard/endpoints", pages.endpoints, methods=["GET"]),
        Route("/dashboard/models", pages.models, methods=["GET"]),
        Route("/dashboard/keys", pages.keys, methods=["GET"]),
        Route("/dashboard/keys/{key_id}/revoke", pages.revoke_form, methods=["GET"]),
        Route("/dashboard/keys/{key_id}/revoke", pages.revoke, methods=["POST"]),
        Route("/dashboard/requests", pages.request_log, methods=["GET"]),
        Route("/dashboard/static/dashboard.css", pages.stylesheet, methods=["GET"]),
    ]
