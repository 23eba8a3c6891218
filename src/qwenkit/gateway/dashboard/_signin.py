"""Signing in to the dashboard and out of it: ``SignIn`` (the form, the master key check, the
session cookie, the CSRF token of every later form); the mechanics are in ``_session``."""

from __future__ import annotations

import secrets

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from qwenkit.gateway.dashboard._render import SECURITY_HEADERS, html_page, message_page
from qwenkit.gateway.dashboard._session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    LoginLimiter,
    Session,
    Sessions,
)

__all__ = ["SignIn"]


class SignIn:
    """The sign-in of the dashboard of a gateway whose admin key is ``master_key`` (``None``:
    the dashboard is off)."""

    def __init__(self, master_key: str | None, env: jinja2.Environment) -> None:
        self.sessions = Sessions(master_key) if master_key else None
        self.limiter = LoginLimiter()
        self.env = env

    async def form(self, request: Request) -> Response:
        if self.sessions is None:
            return self.no_master_key()
        if self.session(request) is not None:
            return RedirectResponse("/dashboard", 303)
        return self._form(request)

    async def submit(self, request: Request) -> Response:
        if self.sessions is None:
            return self.no_master_key()
        client = request.client.host if request.client else "unknown"
        if self.limiter.blocked(client):
            return self._form(request, "Too many wrong keys: wait a minute and try again.", 429)
        form = await request.form()
        token = form.get("csrf")
        if not token or token != request.cookies.get(CSRF_COOKIE):
            return message_page(
                self.env, "The sign-in form expired: reload it.", 403, "/dashboard/login"
            )
        given = form.get("master_key")
        if not isinstance(given, str) or not self.sessions.check_key(given):
            self.limiter.failed(client)
            return self._form(request, "Wrong master key.", 401)
        response = RedirectResponse("/dashboard", 303)
        response.set_cookie(
            SESSION_COOKIE, self.sessions.new(), max_age=SESSION_SECONDS, path="/dashboard",
            secure=True, httponly=True, samesite="strict",
        )  # fmt: skip
        response.delete_cookie(CSRF_COOKIE, path="/dashboard/login")
        return response

    async def sign_out(self, request: Request) -> Response:
        session = self.session(request)
        if session is not None:
            form = await request.form()
            if not self.csrf_ok(session, form.get("csrf")):
                return message_page(
                    self.env, "This form expired: reload the page.", 403, "/dashboard"
                )
        response = RedirectResponse("/dashboard/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/dashboard")
        return response

    def session(self, request: Request) -> Session | None:
        """The request's session (``None``: not signed in, or the dashboard is off)."""
        if self.sessions is None:
            return None
        return self.sessions.read(request.cookies.get(SESSION_COOKIE))

    def csrf(self, session: Session) -> str:
        assert self.sessions is not None
        return self.sessions.csrf(session)

    def csrf_ok(self, session: Session, token: object) -> bool:
        assert self.sessions is not None
        return isinstance(token, str) and self.sessions.check_csrf(session, token)

    def no_master_key(self) -> Response:
        return message_page(
            self.env,
            "The dashboard needs a master key: set QWENKIT_MASTER_KEY (or let `qwenkit serve` "
            "make one on an embedded store).",
            404,
        )

    @staticmethod
    def to_login() -> Response:
        return RedirectResponse("/dashboard/login", 303, headers=SECURITY_HEADERS)

    def _form(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = html_page(
            self.env, "login.html", status, title="Sign in", error=error, login_csrf=token
        )
        response.set_cookie(
            CSRF_COOKIE, token, max_age=3600, path="/dashboard/login", secure=True,
            httponly=True, samesite="strict",
        )  # fmt: skip
        return response
