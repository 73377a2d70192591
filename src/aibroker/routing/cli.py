"""`aibroker config load FILE`: load a routing configuration (YAML), idempotently."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

config_app = typer.Typer(help="The routing configuration (features, plans, providers).", no_args_is_help=True)


@config_app.command("load")
def load(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="A YAML file, e.g. examples/ai-config-core.yaml."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Load (upsert) providers, features, defaults, the plan matrix and overrides. Loading the
    same file twice leaves the same configuration; running brokers pick it up within seconds."""
    from aibroker.errors import BrokerError
    from aibroker.migrations.runner import upgrade
    from aibroker.routing.config_file import load_file

    upgrade()
    try:
        result = asyncio.run(load_file(file))
    except BrokerError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(
            f"loaded {file}: {result['providers']} providers, {result['features']} features, "
            f"{result['feature_providers']} feature providers, {result['matrix']} matrix rows, {result['overrides']} overrides"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
