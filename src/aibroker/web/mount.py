"""install(app): the console's pages (PAGE_MODULES), its static files and its error pages."""

from __future__ import annotations

import importlib
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from aibroker.web import errors, render
from aibroker.web.nav import NavEntry
from aibroker.web.pages import PAGE_MODULES

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    nav: list[NavEntry] = []
    for name in PAGE_MODULES:
        module = importlib.import_module(f"aibroker.web.pages.{name}")
        # HTML, not JSON: out of the OpenAPI schema (and so out of the API fuzz) whatever the module says.
        app.include_router(module.router, include_in_schema=False)
        nav.extend(getattr(module, "NAV", ()))
    render.set_nav(nav)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    errors.install(app)
