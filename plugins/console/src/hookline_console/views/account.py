"""Signing in and out."""

from __future__ import annotations

import hmac

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import redirect

from hookline_console.web import (
    COOKIE,
    PRE_COOKIE,
    PREFIX,
    Console,
    cookie_secure,
    form_value,
    new_pre_token,
    safe_next,
)


def register(bp: Blueprint, console: Console) -> None:
    @bp.get("/")
    async def home(request: Request) -> HTTPResponse:
        return redirect(f"{PREFIX}/workflows")

    @bp.get("/sign-in")
    async def sign_in_form(request: Request) -> HTTPResponse:
        session = await console.sessions.find(request.cookies.get(COOKIE))
        if session is not None:
            return redirect(safe_next(request.args.get("next")))
        return _form(request, console, status=200)

    @bp.post("/sign-in")
    async def sign_in(request: Request) -> HTTPResponse:
        address = request.remote_addr or request.ip or "?"
        pre_cookie = request.cookies.get(PRE_COOKIE) or ""
        pre_form = form_value(request.form, "signin_token")
        if not pre_cookie or not hmac.compare_digest(pre_cookie.encode(), pre_form.encode()):
            return _form(request, console, status=403, problem="The sign-in form expired. Sign in again.")
        wait = console.sessions.limiter.retry_after(address)
        if wait:
            response = _form(
                request, console, status=429, problem=f"Too many failed sign-ins from your address. Try again in {wait} s."
            )
            response.headers["Retry-After"] = str(wait)
            return response
        method = await console.sessions.check_secret(form_value(request.form, "secret"))
        if method is None:
            console.sessions.limiter.failed(address)
            return _form(request, console, status=401, problem="That token or password is not right.")
        console.sessions.limiter.succeeded(address)
        token, session = await console.sessions.start(method, address)
        response = redirect(safe_next(form_value(request.form, "next")), status=303)
        response.add_cookie(
            COOKIE,
            token,
            path=PREFIX,
            httponly=True,
            samesite="Strict",
            secure=cookie_secure(request, console.settings),
            expires=session.expires_at,
        )
        response.delete_cookie(PRE_COOKIE, path=f"{PREFIX}/sign-in")
        return response

    @bp.post("/sign-out")
    async def sign_out(request: Request) -> HTTPResponse:
        await console.sessions.end(request.ctx.console_session)
        response = redirect(f"{PREFIX}/sign-in?signed_out=1", status=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response


def _form(request: Request, console: Console, *, status: int, problem: str | None = None) -> HTTPResponse:
    pre = new_pre_token()
    response = console.render(
        request,
        "sign_in.html",
        status=status,
        signin_token=pre,
        next=safe_next(form_value(request.form, "next") if request.method == "POST" else request.args.get("next")),
        problem=problem,
        signed_out=request.args.get("signed_out") == "1",
        password_enabled=console.settings.password is not None,
    )
    response.add_cookie(
        PRE_COOKIE,
        pre,
        path=f"{PREFIX}/sign-in",
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(request, console.settings),
        max_age=3600,
    )
    return response
