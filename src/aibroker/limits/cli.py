"""`aibroker plan list | show | create | update | delete`."""

from __future__ import annotations

import json
from typing import Any

import typer

from aibroker.cli_support import with_session

plan_app = typer.Typer(help="Plans: limits, quotas, margin and price of each.", no_args_is_help=True)


def _limit(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


@plan_app.command("list")
def list_plans(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Every plan with its limits (blank/null: no limit)."""
    from aibroker.limits.plan_service import list_plans as fetch

    plans = with_session(fetch, commit=True)  # commits default plans if they were missing
    if as_json:
        typer.echo(json.dumps(plans, indent=2))
        return
    typer.echo(f"{'slug':<14}{'req/min':>9}{'req/hour':>10}{'tok/min':>11}{'tok/month':>14}{'orgs':>6}")
    for p in plans:
        typer.echo(
            f"{p['slug']:<14}{_limit(p['requests_per_minute']):>9}{_limit(p['requests_per_hour']):>10}"
            f"{_limit(p['tokens_per_minute']):>11}{_limit(p['monthly_token_quota']):>14}{p['organizations']:>6}"
        )


@plan_app.command("show")
def show(slug: str) -> None:
    """One plan, as JSON."""
    from aibroker.limits.plan_service import get_plan, plan_view

    async def work(session: Any) -> dict[str, Any]:
        return plan_view(await get_plan(session, slug))

    typer.echo(json.dumps(with_session(work), indent=2))


@plan_app.command("create")
def create(slug: str, fields: str = typer.Option("{}", "--fields", help='Limits as JSON, e.g. \'{"requests_per_minute": 60}\'.'),
           name: str = typer.Option(None, help="Display name (default: SLUG upper-cased).")) -> None:
    """Create a custom plan."""
    from aibroker.limits.plan_service import PlanCreate, create_plan, plan_view

    body = PlanCreate(slug=slug, name=name or slug.upper(), **json.loads(fields))

    async def work(session: Any) -> dict[str, Any]:
        return plan_view(await create_plan(session, body))

    typer.echo(json.dumps(with_session(work, commit=True), indent=2))


@plan_app.command("update")
def update(slug: str, fields: str = typer.Option(..., "--fields", help="Fields to change, as JSON (null removes a limit).")) -> None:
    """Change a plan (running brokers pick it up within AIBROKER_PLANS_REFRESH_SECONDS)."""
    from aibroker.limits.plan_service import PlanUpdate, plan_view, update_plan

    body = PlanUpdate(**json.loads(fields))

    async def work(session: Any) -> dict[str, Any]:
        return plan_view(await update_plan(session, slug, body))

    typer.echo(json.dumps(with_session(work, commit=True), indent=2))


@plan_app.command("delete")
def delete(slug: str) -> None:
    """Delete a custom plan that no organization is on."""
    from aibroker.limits.plan_service import delete_plan

    with_session(lambda session: delete_plan(session, slug), commit=True)
    typer.echo(f"deleted plan {slug}")


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")
