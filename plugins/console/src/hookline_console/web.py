"""The console's blueprint: sign-in, sessions, CSRF, security headers, and the page views.

Every page is a thin view over the host's services, the ones the management API and the CLI
use. Views live in :mod:`hookline_console.views`; this module holds what every page shares.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import quote, urlsplit

import jinja2
from markupsafe import Markup
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import html, redirect

from hookline import Host, HooklineError
from hookline.ui import ConsolePage
from hookline_console.rendering import make_environment, plugin_loader
from hookline_console.sessions import Session, SessionService
from hookline_console.settings import ConsoleSettings

log = logging.getLogger("hookline.console")

PREFIX = "/console"
COOKIE = "hookline_console"
#: Before signing in: a random value in a cookie and in the sign-in form, which must match
#: (a page elsewhere cannot sign the browser in to a session of its own choosing).
PRE_COOKIE = "hookline_console_signin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
PUBLIC = (f"{PREFIX}/sign-in", f"{PREFIX}/static/")

#: No inline script or style, no framing, nothing loaded from elsewhere.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass
class Console:
    """What the views share: the host, the sessions, the templates, the plugins' pages."""

    host: Host
    settings: ConsoleSettings
    sessions: SessionService
    env: jinja2.Environment
    pages: list[ConsolePage]
    page_envs: dict[str, jinja2.Environment] = field(default_factory=dict)

    @property
    def nav_pages(self) -> list[ConsolePage]:
        return [page for page in self.pages if page.scope == "console"]

    def workflow_tabs(self, trigger: str) -> list[ConsolePage]:
        return [p for p in self.pages if p.scope == "workflow" and p.trigger in (None, trigger)]

    def page(self, name: str, scope: str) -> ConsolePage | None:
        return next((p for p in self.pages if p.name == name and p.scope == scope), None)

    def render(self, request: Request, template: str, *, status: int = 200, **context: Any) -> HTTPResponse:
        """A page in the layout. An htmx request gets the whole page too: it picks the part it
        swaps with ``hx-select``."""
        body = self.env.get_template(template).render(**self.context(request), **context)
        return html(body, status=status)

    def context(self, request: Request) -> dict[str, Any]:
        session: Session | None = getattr(request.ctx, "console_session", None)
        token = session.csrf_token if session else ""
        return {
            "prefix": PREFIX,
            "csrf_token": token,
            "csrf_field": lambda: Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token),
            "signed_in": session is not None,
            "nav_pages": self.nav_pages,
            "path": request.path,
        }

    def error(self, request: Request, status: int, title: str, message: str) -> HTTPResponse:
        return self.render(request, "error.html", status=status, title=title, message=message)


def build_blueprint(host: Host, settings: ConsoleSettings) -> Blueprint:
    from hookline_console import views

    console = Console(
        host=host,
        settings=settings,
        sessions=SessionService(host.settings.api_token, settings),
        env=make_environment(),
        pages=host.hooks.console_pages(host),
    )
    for page in console.pages:
        if page.templates:
            env = make_environment()
            env.loader = jinja2.ChoiceLoader([plugin_loader(page.templates), env.loader])  # type: ignore[list-item]
            console.page_envs[page.name] = env

    bp = Blueprint("hookline_console", url_prefix=PREFIX)
    bp.ctx.console = console
    bp.ctx.hookline_openapi = False  # pages for people: not in /openapi.json
    bp.static("/static", str(resources.files("hookline_console").joinpath("static")), name="static")

    @bp.on_request
    async def authenticate(request: Request) -> HTTPResponse | None:
        request.ctx.console_session = None
        if request.path.startswith(PUBLIC):
            return None
        session = await console.sessions.find(request.cookies.get(COOKIE))
        if session is None:
            return _sign_in_first(request)
        request.ctx.console_session = session
        if request.method not in ("GET", "HEAD") and not _csrf_ok(request, session):
            return console.error(
                request,
                403,
                "Refused: the form's security token is missing or stale",
                "Reload the page and submit again. (Every form carries a token that proves it came from "
                "this console; this request's was missing or did not match your session.)",
            )
        return None

    @bp.on_response
    async def security_headers(request: Request, response: HTTPResponse) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)

    views.register(bp, console)

    async def no_such_page(request: Request, rest: str) -> HTTPResponse:
        """Any other path under /console/: a page saying so, not the API's JSON 404."""
        if not rest.strip("/"):  # /console/ itself (this route can win over the home route)
            return redirect(f"{PREFIX}/workflows")
        return console.error(request, 404, "Not found", f"The console has no page {request.path}.")

    bp.add_route(no_such_page, "/<rest:path>", methods=["GET"], name="no_such_page")
    return bp


def _sign_in_first(request: Request) -> HTTPResponse:
    target = f"{PREFIX}/sign-in"
    if request.method in ("GET", "HEAD"):
        target += "?next=" + quote(request.path + (f"?{request.query_string}" if request.query_string else ""), safe="")
    if request.headers.get("HX-Request"):
        response = HTTPResponse(status=401)
        response.headers["HX-Redirect"] = target
        return response
    if request.method not in ("GET", "HEAD"):
        return redirect(target, status=303)
    return redirect(target)


def _csrf_ok(request: Request, session: Session) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.form is not None:
        sent = request.form.get(CSRF_FIELD)
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        return False
    # Defence in depth: a browser names the page a POST came from; it must be this server.
    origin = request.headers.get("origin")
    return origin is None or _same_origin(origin, request)


def _same_origin(origin: str, request: Request) -> bool:
    parts = urlsplit(origin)
    return parts.netloc == request.host


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


def cookie_secure(request: Request, settings: ConsoleSettings) -> bool:
    if settings.secure_cookie == "always":
        return True
    if settings.secure_cookie == "never":
        return False
    return request.scheme == "https"


def new_pre_token() -> str:
    return secrets.token_urlsafe(24)


View = Callable[..., Awaitable[HTTPResponse]]


def guarded(console: Console, view: View) -> View:
    """Turns the host's errors into pages: an unknown workflow is a 404 page, bad input a 400
    page naming the problem; never a traceback."""

    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
        try:
            return await view(request, *args, **kwargs)
        except HooklineError as exc:
            status = exc.status if 400 <= exc.status < 600 else 500
            if status >= 500:
                log.exception("console page %s failed", request.path)
            return console.error(request, status, _title(status), exc.message)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _title(status: int) -> str:
    return {400: "Bad request", 403: "Forbidden", 404: "Not found", 409: "Conflict", 422: "Invalid"}.get(
        status, "Something went wrong"
    )


def list_filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """A list page's filters as given in its query (``""`` for each one not given)."""
    return {name: request.args.get(name, "").strip() for name in names}


def filters_query(filters: Mapping[str, str]) -> str:
    """The filters given, as the start of a query string that a ``cursor=`` completes."""
    return "".join(f"{quote(name, safe='')}={quote(value, safe='')}&" for name, value in filters.items() if value)


def form_value(form: Mapping[str, Any] | None, name: str, default: str = "") -> str:
    if not form:
        return default
    value = form.get(name)
    return value if isinstance(value, str) else default
