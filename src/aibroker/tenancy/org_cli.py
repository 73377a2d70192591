"""`aibroker org list | show | update`: the platform's organization administration from the
shell (the same functions as /api/admin/organizations; `org create` lives in cli.py)."""

from __future__ import annotations

import json
from typing import Any

import typer

from aibroker.cli_support import with_session


def _emit(data: Any, as_json: bool, human: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else human)


def _line(org: dict[str, Any]) -> str:
    return f"{org['id']}  {org['slug']:<24} {org['plan']:<14} {org['status']:<10} {org['name']}"


def register(org_app: typer.Typer) -> None:
    @org_app.command("list")
    def org_list(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
        """Every organization: id, slug, plan, status, name."""
        from aibroker.tenancy.org_admin import list_organizations

        rows = with_session(list_organizations)
        _emit(rows, as_json, "\n".join(_line(o) for o in rows) or "no organizations")

    @org_app.command("show")
    def org_show(
        org: str = typer.Argument(..., help="Organization id, slug or name."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """One organization, with its wallet balance and API key count."""
        from aibroker.tenancy.org_admin import organization_details
        from aibroker.tenancy.service import find_organization

        async def work(session: Any) -> dict[str, Any]:
            return await organization_details(session, await find_organization(session, org))

        data = with_session(work)
        _emit(data, as_json, f"{_line(data)}\nbalance: {data['balance_micros']} micros   API keys: {data['api_keys']}")

    @org_app.command("update")
    def org_update(
        org: str = typer.Argument(..., help="Organization id, slug or name."),
        plan: str = typer.Option(None, help="A plan's slug (free, starter, professional, enterprise, unlimited, custom)."),
        status: str = typer.Option(None, help="trial | active | suspended | cancelled."),
        name: str = typer.Option(None, help="A new display name."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Change an organization's plan, status or name. Running brokers apply it within
        AIBROKER_AUTH_CACHE_SECONDS."""
        from aibroker.tenancy.org_admin import change_organization
        from aibroker.tenancy.service import find_organization

        if plan is None and status is None and name is None:
            typer.echo("error: give --plan, --status or --name", err=True)
            raise typer.Exit(2)

        async def work(session: Any) -> dict[str, Any]:
            found = await find_organization(session, org)
            return await change_organization(session, found, plan=plan, status=status, name=name)

        data = with_session(work, commit=True)
        _emit(data, as_json, f"updated {_line(data)}")
