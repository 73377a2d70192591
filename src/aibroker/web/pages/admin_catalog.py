"""Platform pages: catalog prices (view, edit, reset), through the catalog overrides service
that /api/admin/catalog uses. A change reloads this process's catalog at once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from aibroker.catalog import overrides
from aibroker.catalog.service import Catalog
from aibroker.errors import BrokerError, NotFound
from aibroker.gateway.http import services
from aibroker.providers.specs import known_provider_names
from aibroker.web.pages import admin_common as common

router = APIRouter(prefix="/console/admin/catalog", include_in_schema=False, dependencies=[Depends(common.super_admin)])
NAV = common.nav("Catalog prices", "/console/admin/catalog")
SHOWN = 500


def _catalog(request: Request) -> Catalog:
    return services(request).catalog


def _known(catalog: Catalog) -> set[str]:
    return known_provider_names() | {e.provider for e in catalog.entries()}


def _view(catalog: Catalog, model_id: str, overridden: set[str]) -> dict[str, Any]:
    entry = catalog.get(model_id)
    if entry is None:
        raise NotFound(f"the catalog has no model '{model_id}'")
    source = "override" if model_id in overridden else "discovered" if catalog.is_discovered(model_id) else "packaged"
    return overrides.entry_view(entry, source=source)


@router.get("")
async def catalog(request: Request, q: str = "", provider: str = "", session: AsyncSession = common.SESSION) -> Response:
    """Every catalog entry with its effective price (USD per 1M tokens) and where it comes from."""
    cat = _catalog(request)
    overridden = set(await overrides.overrides_by_id(session))
    term, provider = q.strip().lower()[:200], provider.strip()[:60]
    entries = [e for e in sorted(cat.entries(), key=lambda e: e.id)
               if (not term or term in e.id.lower()) and (not provider or e.provider == provider)]
    rows = [_view(cat, e.id, overridden) for e in entries[:SHOWN]]
    providers = sorted({e.provider for e in cat.entries()})
    return common.page(request, "admin/catalog.html", title="Catalog prices", rows=rows, total=len(entries), shown=SHOWN,
                       q=term, provider=provider, providers=providers)


def _page(request: Request, entry: dict[str, Any], *, form: dict[str, str] | None = None, error: BrokerError | None = None) -> Response:
    return common.page(request, "admin/catalog_model.html", title=f"Price of {entry['id']}", entry=entry, form=form,
                       error=error, status_code=error.status_code if error else 200)


@router.get("/models/{model_id:path}")
async def edit_model(request: Request, model_id: str, session: AsyncSession = common.SESSION) -> Response:
    """The price form of one model."""
    overridden = set(await overrides.overrides_by_id(session))
    return _page(request, _view(_catalog(request), model_id, overridden))


def _request(form: dict[str, str], existing: Any) -> overrides.OverrideRequest:
    """Prices and enabled from the form; the override's other fields (context, capabilities)
    are kept as they were, since an override replaces the whole row."""
    def price(name: str) -> str | None:
        return form.get(name, "").strip() or None

    return overrides.OverrideRequest(
        input_per_1m=price("input_per_1m"), output_per_1m=price("output_per_1m"),
        cached_input_per_1m=price("cached_input_per_1m"),
        context_length=existing.context_length if existing else None,
        max_output_tokens=existing.max_output_tokens if existing else None,
        capabilities=existing.capabilities if existing else None,
        enabled=form.get("enabled") == "on",
    )


@router.post("/models/{model_id:path}", dependencies=[Depends(common.csrf)])
async def save_model(request: Request, model_id: str, session: AsyncSession = common.SESSION) -> Response:
    """Create or replace the model's price override, as PUT /api/admin/catalog/{provider}/{model}."""
    cat = _catalog(request)
    existing = await overrides.overrides_by_id(session)
    entry = _view(cat, model_id, set(existing))  # only models the catalog lists are edited here
    form = await common.form(request)
    try:
        await overrides.set_override(session, model_id, _request(form, existing.get(model_id)),
                                     listed=cat.get(model_id), known_providers=_known(cat))
        await session.commit()
    except BrokerError as error:
        await session.rollback()
        return _page(request, entry, form=form, error=error)
    await cat.load_overrides(session)
    return common.redirect(request, f"/console/admin/catalog/models/{model_id}", f"Saved the price of {model_id}.")


@router.post("/reset/{model_id:path}", dependencies=[Depends(common.csrf)])
async def reset_model(request: Request, model_id: str, session: AsyncSession = common.SESSION) -> Response:
    """Remove the override: the packaged (or discovered) price applies again."""
    cat = _catalog(request)
    overrides.split_model_id(model_id, _known(cat))
    await overrides.delete_override(session, model_id)  # 404 when there is none
    await session.commit()
    await cat.load_overrides(session)
    return common.redirect(request, f"/console/admin/catalog/models/{model_id}", f"{model_id} is back to its catalog price.")
