"""aibroker's command line: serve | migrate | org | key | wallet | verify-ledger | demo."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from decimal import Decimal
from typing import Any

import typer

from aibroker.config import get_settings

app = typer.Typer(
    help="aibroker: a self-hostable, multi-tenant AI broker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
org_app = typer.Typer(help="Organizations.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(key_app, name="key")


def _emit(data: dict[str, Any], as_json: bool, human: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else human)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run(coro):  # type: ignore[no-untyped-def]
    """Run an async command; domain errors become a clean message and exit code 1."""
    from aibroker.errors import BrokerError

    try:
        return asyncio.run(coro)
    except BrokerError as exc:
        _fail(exc.message)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (also done by `serve`)."""
    from aibroker.migrations.runner import upgrade

    upgrade()
    typer.echo("database is up to date")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes (they share the database and Redis)."),
) -> None:
    """Migrate, then serve the HTTP API."""
    import uvicorn

    from aibroker.migrations.runner import upgrade
    from aibroker.ops.logging import configure

    settings = get_settings()
    configure(settings.server.log_level)
    upgrade()
    uvicorn.run(
        "aibroker.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        log_level=settings.server.log_level.lower(),
        timeout_graceful_shutdown=10,
        proxy_headers=False,  # X-Forwarded-For is believed only from AIBROKER_TRUSTED_PROXIES (tenancy/key_guard.py)
    )


async def _create_org(name: str, slug: str | None, plan: str, credit: Decimal | None) -> dict[str, Any]:
    from aibroker.billing.batch import PostEntry
    from aibroker.billing.service import post_entry_sync
    from aibroker.db import Database, make_sync_engine
    from aibroker.kit.money import to_micros
    from aibroker.tenancy import service

    db = Database()
    try:
        async with db.sessions() as session:
            org = await service.create_organization(session, name=name, slug=slug, plan=plan)
            issued = await service.create_api_key(session, organization_id=org.id)
            await session.commit()
    finally:
        await db.dispose()
    balance = 0
    if credit:
        engine = make_sync_engine(immediate=True)
        try:
            entry = PostEntry(org.id, "recharge", to_micros(credit), description="initial credit")
            balance = post_entry_sync(engine, entry).balance_after
        finally:
            engine.dispose()
    return {"organization_id": org.id, "name": org.name, "slug": org.slug, "plan": org.plan, "api_key": issued.key, "balance_micros": balance}


@org_app.command("create")
def org_create(
    name: str,
    slug: str = typer.Option(None, help="URL-safe unique name (derived from NAME when omitted)."),
    plan: str = typer.Option("free", help="free | starter | professional | enterprise | unlimited | a custom plan's slug."),
    credit: Decimal = typer.Option(None, min=0, help="Initial wallet credit in USD, posted to the ledger."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Create an organization with its wallet and first API key (shown once)."""
    data = _run(_create_org(name, slug, plan, credit))
    _emit(data, as_json, f"organization {data['organization_id']} ({data['slug']})\nAPI key (shown once): {data['api_key']}")


async def _create_key(org_ref: str, name: str) -> dict[str, Any]:
    from aibroker.db import Database
    from aibroker.tenancy import service

    db = Database()
    try:
        async with db.sessions() as session:
            org = await service.find_organization(session, org_ref)
            issued = await service.create_api_key(session, organization_id=org.id, name=name)
            await session.commit()
    finally:
        await db.dispose()
    return {"organization_id": org.id, "key_id": issued.id, "api_key": issued.key}


@key_app.command("create")
def key_create(
    org: str = typer.Argument(..., help="Organization id, slug or name."),
    name: str = typer.Option("default", help="A label for the key."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Create an API key for an organization (shown once)."""
    data = _run(_create_key(org, name))
    _emit(data, as_json, f"API key (shown once): {data['api_key']}")


async def _revoke_key(org_ref: str, key_id: str) -> dict[str, Any]:
    from aibroker.db import Database
    from aibroker.tenancy import service

    db = Database()
    try:
        async with db.sessions() as session:
            org = await service.find_organization(session, org_ref)
            await service.revoke_api_key(session, organization_id=org.id, key_id=key_id)
            await session.commit()
    finally:
        await db.dispose()
    return {"organization_id": org.id, "key_id": key_id, "revoked": True}


@key_app.command("revoke")
def key_revoke(
    org: str = typer.Argument(..., help="Organization id, slug or name."),
    key_id: str = typer.Argument(..., help="The key's id (key_...)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Revoke an API key."""
    data = _run(_revoke_key(org, key_id))
    _emit(data, as_json, f"revoked {key_id}")


async def _demo_org() -> dict[str, Any]:
    """The demo organization (made on first run) and a fresh key for it."""
    from sqlalchemy import select

    from aibroker.db import Database
    from aibroker.models import Organization

    db = Database()
    try:
        async with db.sessions() as session:
            exists = await session.scalar(select(Organization.id).where(Organization.slug == DEMO_SLUG))
    finally:
        await db.dispose()
    if exists is None:
        return await _create_org("Demo", DEMO_SLUG, "professional", Decimal("10"))
    return await _create_key(DEMO_SLUG, "demo")


DEMO_SLUG = "demo"


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is minted: a busy port fails first, cleanly."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        _fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); is another server running there? "
              f"Choose another port: aibroker demo --port {port + 1} (or make run PORT={port + 1})", code=3)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _demo_admin_token() -> str | None:
    """A platform admin token for the demo's /api/admin/* routes, when none is configured
    (then printed once); None when AIBROKER_ADMIN_TOKEN is already set."""
    import secrets

    if get_settings().server.admin_token:
        return None
    token = "adm_" + secrets.token_urlsafe(24)
    os.environ["AIBROKER_ADMIN_TOKEN"] = token
    get_settings.cache_clear()  # the app reads it from the environment
    return token


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8080),
) -> None:
    """Bind the port, migrate, make a demo organization ($10 credit) and key, print how to call
    it (and a platform admin token when none is set), serve. A busy port exits 3, minting nothing."""
    import uvicorn

    from aibroker.migrations.runner import upgrade
    from aibroker.ops.logging import configure

    sock = _bind(host, port)
    admin_token = _demo_admin_token()
    upgrade()
    data = _run(_demo_org())
    key, base = data["api_key"], f"http://{host}:{port}"
    from aibroker.web.demo import ensure_demo_user

    console_email, console_password = _run(ensure_demo_user(DEMO_SLUG))
    model = "mock-chat"
    admin_line = (f"\nPlatform admin token (set for this run, /api/admin/*): AIBROKER_ADMIN_TOKEN={admin_token}"
                  if admin_token else "")
    typer.echo(
        f"""
aibroker is starting on {base} (database: {get_settings().database.database_url})
Demo organization: {DEMO_SLUG}    API key (shown once): {key}{admin_line}

Console: {base}/console    e-mail: {console_email}    password (new at every start, shown once): {console_password}

curl {base}/v1/chat/completions \\
  -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
  -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

.venv/bin/python - <<'PY'   # the openai package is in .venv (elsewhere: pip install openai)
from openai import OpenAI
client = OpenAI(base_url="{base}/v1", api_key="{key}")
reply = client.chat.completions.create(model="{model}", messages=[{{"role": "user", "content": "Hello!"}}])
print(reply.choices[0].message.content)
PY

Set OPENAI_API_KEY (or ANTHROPIC_API_KEY, ...) to use real models; `mock-*` models always work.
"""
    )
    settings = get_settings()
    configure(settings.server.log_level)
    config = uvicorn.Config("aibroker.app:create_app", factory=True, loop="uvloop", http="httptools", access_log=False,
                            log_config=None, log_level=settings.server.log_level.lower(), timeout_graceful_shutdown=10,
                            proxy_headers=False)
    uvicorn.Server(config).run(sockets=[sock])  # on the socket bound above


def main() -> None:
    from aibroker.billing.cli import register

    register(app)
    from aibroker.jobs.cli import register as register_worker

    register_worker(app)
    from aibroker.routing.cli import register as register_routing

    register_routing(app)
    from aibroker.limits.cli import register as register_plans

    register_plans(app)
    from aibroker.tenancy.cli import register as register_secrets

    register_secrets(app)
    from aibroker.tenancy.org_cli import register as register_orgs

    register_orgs(org_app)
    from aibroker.catalog.cli import register as register_catalog

    register_catalog(app)
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
