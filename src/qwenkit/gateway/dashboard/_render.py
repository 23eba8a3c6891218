"""Rendering the dashboard's pages: the Jinja2 environment (autoescaped, templates in
``templates/``), the security headers every page answers with, and money, rates, durations and
times written for people.

The headers: a Content-Security-Policy that allows no script at all (``default-src 'none'``; the
pages have none: charts are inline SVG drawn on the server), styles only from the dashboard's
own stylesheet, forms posting only here, and no framing; no caching, no referrer.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.responses import HTMLResponse

__all__ = [
    "PAGES",
    "SECURITY_HEADERS",
    "environment",
    "figure",
    "html_page",
    "message_page",
    "money",
    "pct",
    "secs",
    "when",
]

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
PAGES = (
    ("/dashboard", "Overview"),
    ("/dashboard/endpoints", "Endpoints"),
    ("/dashboard/models", "Models"),
    ("/dashboard/keys", "Keys"),
    ("/dashboard/requests", "Requests"),
)
HERE = Path(__file__).parent
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.S)


def environment() -> jinja2.Environment:
    """The templates, autoescaped, with the formatting functions as globals."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(money=money, pct=pct, secs=secs)
    return env


def html_page(
    env: jinja2.Environment, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """``template`` rendered with ``context``, with the security headers."""
    context.setdefault("flash", None)
    context.setdefault("span", None)
    context.setdefault("signed_in", False)
    html = env.get_template(template).render(**context)
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)


def message_page(
    env: jinja2.Environment, message: str, status: int, link: str | None = None
) -> HTMLResponse:
    """A page that says one thing (an error) with a link back."""
    return html_page(
        env, "message.html", status, title="Dashboard", message=message, link=link,
        link_text="Back",
    )  # fmt: skip


def figure(svg: str) -> Markup:
    """The chart in a ``<figure>`` captioned with its title (already escaped in the SVG)."""
    found = _TITLE.search(svg)
    caption = f"<figcaption>{found.group(1)}</figcaption>" if found else ""
    return Markup(f"<figure>{caption}{svg}</figure>")  # both parts are escaped


def money(value: Decimal | float | None) -> str:
    if value is None:
        return ""
    amount = Decimal(str(value))
    if not amount:
        return "0"
    places = max(6, -amount.adjusted() + 2)  # 0.0000001 stays readable, never "1E-7"
    return f"{amount:.{places}f}".rstrip("0").rstrip(".")


def pct(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value * 100:.1f}%"


def secs(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
