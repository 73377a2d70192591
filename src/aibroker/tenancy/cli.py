"""`aibroker secrets rotate`: re-seal stored secrets under the current AIBROKER_SECRET_KEY.
`aibroker user promote | demote EMAIL`: the platform SUPER_ADMIN flag, granted only here
(whoever runs the command line already holds the database)."""

from __future__ import annotations

import json
from typing import Any

import typer

from aibroker.cli_support import with_session
from aibroker.config import get_settings


def _super_admin_command(email: str, value: bool, as_json: bool) -> None:
    from aibroker.tenancy.users import set_super_admin

    async def work(session: Any) -> dict[str, Any]:
        user, changed = await set_super_admin(session, email=email, value=value)
        return {"user_id": user.id, "email": user.email, "is_super_admin": user.is_super_admin, "changed": changed}

    data = with_session(work, commit=True)
    if as_json:
        typer.echo(json.dumps(data))
        return
    state = "is now" if data["changed"] else "was already"
    typer.echo(f"{data['email']} ({data['user_id']}) {state} {'a super admin' if value else 'not a super admin'}")


def register(app: typer.Typer) -> None:
    user_app = typer.Typer(help="Users: the platform SUPER_ADMIN flag.", no_args_is_help=True)
    app.add_typer(user_app, name="user")

    @user_app.command("promote")
    def promote_command(
        email: str = typer.Argument(..., help="The user's e-mail (their login)."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Make a user a platform SUPER_ADMIN: every organization, and the /api/admin/* routes with their own login."""
        _super_admin_command(email, True, as_json)

    @user_app.command("demote")
    def demote_command(
        email: str = typer.Argument(..., help="The user's e-mail (their login)."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Withdraw the SUPER_ADMIN flag (admin routes refuse the user's tokens at once)."""
        _super_admin_command(email, False, as_json)

    secrets_app = typer.Typer(help="Sealed secrets (provider keys, channel tokens).", no_args_is_help=True)
    app.add_typer(secrets_app, name="secrets")

    @secrets_app.command("rotate")
    def rotate_command(
        from_key: str | None = typer.Option(
            None, "--from", help="The previous secret key (default: AIBROKER_SECRET_KEY_PREVIOUS).", envvar=None
        ),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Re-seal every sealed column from the previous key to AIBROKER_SECRET_KEY, in one transaction."""
        from aibroker.db import make_sync_engine
        from aibroker.errors import BrokerError
        from aibroker.tenancy.secrets import rotate

        settings = get_settings()
        old = from_key or settings.accounts.secret_key_previous
        if not old:
            typer.echo("error: give the previous key with --from or AIBROKER_SECRET_KEY_PREVIOUS", err=True)
            raise typer.Exit(1)
        engine = make_sync_engine(settings.database.database_url, pooled=False)
        try:
            report = rotate(engine, old_secret=old, new_secret=settings.server.secret_key)
        except BrokerError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(1) from None
        finally:
            engine.dispose()
        if as_json:
            typer.echo(json.dumps({"resealed": report.resealed, "already_current": report.already_current}))
        else:
            for table, count in report.resealed.items():
                typer.echo(f"{table}: {count} re-sealed, {report.already_current[table]} already current")
