"""`aibroker secrets rotate`: re-seal stored secrets under the current AIBROKER_SECRET_KEY."""

from __future__ import annotations

import json

import typer

from aibroker.config import get_settings


def register(app: typer.Typer) -> None:
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
