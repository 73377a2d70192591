"""`aibroker catalog list | set | unset`: the model catalog and its database overrides.

Overrides are written to the database; running brokers re-read them every
AIBROKER_CATALOG_RELOAD_SECONDS, and the admin routes (/api/admin/catalog) apply a change to
the serving process at once."""

from __future__ import annotations

import json
from typing import Any

import typer

from aibroker.cli_support import with_session

catalog_app = typer.Typer(help="The model catalog: prices, context sizes, capabilities and their overrides.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")


async def _catalog(session: Any) -> tuple[Any, set[str]]:
    """The catalog as a broker with this environment would load it (without the models a
    running broker discovers on self-hosted servers), and the ids that are overridden."""
    from aibroker.catalog import overrides
    from aibroker.catalog.service import Catalog
    from aibroker.providers.specs import enabled_providers

    catalog = Catalog(set(enabled_providers()))
    await catalog.load_overrides(session)
    return catalog, set(await overrides.overrides_by_id(session))


def _known(catalog: Any) -> set[str]:
    from aibroker.providers.specs import known_provider_names

    return known_provider_names() | {e.provider for e in catalog.entries()}


@catalog_app.command("list")
def list_models(
    provider: str = typer.Option(None, help="Only this provider's models."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Every model with its price (USD per 1M tokens) and where it comes from (packaged | override)."""
    from aibroker.catalog.overrides import entry_view

    async def work(session: Any) -> list[dict[str, Any]]:
        catalog, overridden = await _catalog(session)
        entries = sorted(catalog.entries(), key=lambda e: e.id)
        return [entry_view(e, source="override" if e.id in overridden else "packaged")
                for e in entries if provider is None or e.provider == provider]

    rows = with_session(work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'model':<52}{'input':>12}{'output':>12}{'cached':>12}{'context':>10}  source")
    for r in rows:
        flag = "" if r["enabled"] else " (disabled)"
        typer.echo(f"{r['id']:<52}{r['input_per_1m']:>12}{r['output_per_1m']:>12}{r['cached_input_per_1m']:>12}"
                   f"{r['context_length']:>10}  {r['source']}{flag}")


@catalog_app.command("set")
def set_model(
    model_id: str = typer.Argument(..., metavar="MODEL_ID", help="provider/model, e.g. groq/llama-3.3-70b-versatile."),
    input_per_1m: str = typer.Option(None, "--input-per-1m", help="USD per 1M input tokens."),
    output_per_1m: str = typer.Option(None, "--output-per-1m", help="USD per 1M output tokens."),
    cached_input_per_1m: str = typer.Option(None, "--cached-input-per-1m", help="USD per 1M cached prompt tokens."),
    context_length: int = typer.Option(None, "--context-length", help="Context window in tokens."),
    max_output: int = typer.Option(None, "--max-output", help="Most tokens the model produces in one answer."),
    capabilities: str = typer.Option(None, "--capabilities", help="Comma-separated: tools,vision,json,streaming,reasoning."),
    disabled: bool = typer.Option(False, "--disabled", help="Refuse the model in this broker."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Create or replace a model's override (fields left out keep the packaged value). A model the
    catalog does not list needs both prices. Running brokers apply it within AIBROKER_CATALOG_RELOAD_SECONDS."""
    from aibroker.catalog import overrides

    request = overrides.OverrideRequest(
        input_per_1m=input_per_1m, output_per_1m=output_per_1m, cached_input_per_1m=cached_input_per_1m,
        context_length=context_length, max_output_tokens=max_output,
        capabilities=[c.strip() for c in capabilities.split(",") if c.strip()] if capabilities is not None else None,
        enabled=not disabled,
    )

    async def work(session: Any) -> dict[str, Any]:
        catalog, _ = await _catalog(session)
        await overrides.set_override(session, model_id, request, listed=catalog.get(model_id),
                                     known_providers=_known(catalog))
        await catalog.load_overrides(session)
        return overrides.entry_view(catalog.get(model_id), source="override")

    view = with_session(work, commit=True)
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    typer.echo(f"{view['id']}: input {view['input_per_1m']}, output {view['output_per_1m']}, "
               f"cached input {view['cached_input_per_1m']} USD per 1M tokens; context {view['context_length']}, "
               f"max output {view['max_output_tokens']}{'' if view['enabled'] else ', disabled'}. "
               "Running brokers apply it within AIBROKER_CATALOG_RELOAD_SECONDS.")


@catalog_app.command("unset")
def unset_model(
    model_id: str = typer.Argument(..., metavar="MODEL_ID", help="provider/model."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Remove a model's override: the packaged entry applies again."""
    from aibroker.catalog import overrides

    async def work(session: Any) -> dict[str, Any]:
        catalog, _ = await _catalog(session)
        overrides.split_model_id(model_id, _known(catalog))
        await overrides.delete_override(session, model_id)
        return {"id": model_id, "removed": True}

    data = with_session(work, commit=True)
    typer.echo(json.dumps(data, indent=2) if as_json else f"removed the override of {model_id}")
