"""render(request, template, **context): a page in the base layout (nav, organization
switcher, flash messages), with the console's security headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from aibroker.web import flash, formatting
from aibroker.web.nav import NavEntry

TEMPLATES = Path(__file__).parent / "templates"
# Scripts and styles come from /console/static only (no CDN, no inline script); images may be
# remote (channel profile pictures); fetch and WebSockets go to this origin. Forms post here,
# but the top-up's answer redirects to the payment provider's https checkout (form-action
# covers redirects too).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
       "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self' https:; base-uri 'none'")

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                  trim_blocks=True, lstrip_blocks=True)
env.filters.update(money=formatting.money, number=formatting.number, percent=formatting.percent, when=formatting.when)

_nav: list[NavEntry] = []


def set_nav(entries: list[NavEntry]) -> None:
    """Called once by mount.install with every page module's NAV, in PAGE_MODULES order."""
    _nav[:] = entries


def nav_for(console_user: Any) -> dict[str, list[NavEntry]]:
    sections: dict[str, list[NavEntry]] = {}
    if console_user is None:
        return sections
    for entry in _nav:
        if entry.visible_to(console_user):
            sections.setdefault(entry.section, []).append(entry)
    return sections


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page, with `user` (the ConsoleUser or None), `nav`, `csrf_token`, `flashes` and `path` in context."""
    console_user = getattr(request.state, "console_user", None)
    messages = flash.take(request)
    body = env.get_template(template).render(
        request=request, user=console_user, nav=nav_for(console_user), path=request.url.path,
        csrf_token=console_user.csrf_token if console_user is not None else context.pop("csrf_token", ""),
        flashes=messages, **context,
    )
    response = HTMLResponse(body, status_code=status_code)
    response.headers["content-security-policy"] = CSP
    response.headers["x-frame-options"] = "DENY"
    response.headers["referrer-policy"] = "same-origin"
    response.headers["cache-control"] = "no-store"  # pages show balances and secrets: never cached
    if messages:
        response.delete_cookie(flash.COOKIE, path="/console")
    return response
