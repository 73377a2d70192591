"""Platform admin: catalog overrides at /api/admin/catalog (the platform service key).

A change is committed, then this process reloads its catalog at once, so its next request is
priced by it. Other processes (more `serve --workers`, other hosts) read overrides at startup:
restart them, or make the change through each."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.catalog import overrides
from aibroker.catalog.service import Catalog
from aibroker.deps import db_session, require_admin
from aibroker.gateway.http import services
from aibroker.providers.specs import known_provider_names

router = APIRouter(prefix="/api/admin/catalog", tags=["Catalog"], dependencies=[Depends(require_admin)])


class OverrideBody(BaseModel):
    # Strings or numbers; the range is checked by the service (a clear 400, as from the CLI).
    input_per_1m: Decimal | str | None = Field(default=None, description="USD per 1M input tokens, e.g. \"0.50\".")
    output_per_1m: Decimal | str | None = Field(default=None, description="USD per 1M output tokens.")
    cached_input_per_1m: Decimal | str | None = Field(default=None, description="USD per 1M prompt tokens read from the provider's cache.")
    context_length: int | None = None
    max_output_tokens: int | None = None
    capabilities: list[str] | None = Field(default=None, description="tools, vision, json, streaming, reasoning, images, audio.")
    enabled: bool = True


def _known(catalog: Catalog) -> set[str]:
    return known_provider_names() | {e.provider for e in catalog.entries()}


def _view(catalog: Catalog, model_id: str, overridden: set[str]) -> dict:
    entry = catalog.get(model_id)
    assert entry is not None
    source = "override" if model_id in overridden else "discovered" if catalog.is_discovered(model_id) else "packaged"
    return overrides.entry_view(entry, source=source)


@router.get("")
async def list_catalog(request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict:
    """Every catalog entry this process serves with its effective price and where it comes from."""
    catalog: Catalog = services(request).catalog
    overridden = set(await overrides.overrides_by_id(session))
    return {"data": [_view(catalog, e.id, overridden) for e in sorted(catalog.entries(), key=lambda e: e.id)]}


@router.put("/{provider}/{model:path}")
async def put_override(
    provider: str, model: str, body: OverrideBody, request: Request,
    session: AsyncSession = Depends(db_session, scope="function"),
) -> dict:
    """Create or replace the override of `provider/model` (fields left out keep the packaged
    value). A model the catalog does not list needs both prices. Applies to this process at once."""
    catalog: Catalog = services(request).catalog
    model_id = f"{provider}/{model}"
    await overrides.set_override(
        session, model_id, overrides.OverrideRequest(**body.model_dump()),
        listed=catalog.get(model_id), known_providers=_known(catalog),
    )
    await session.commit()
    await catalog.load_overrides(session)
    return _view(catalog, model_id, {model_id})


@router.delete("/{provider}/{model:path}", status_code=204)
async def delete_override(
    provider: str, model: str, request: Request, session: AsyncSession = Depends(db_session, scope="function"),
) -> None:
    """Remove the override: the packaged (or discovered) entry applies again."""
    catalog: Catalog = services(request).catalog
    model_id = f"{provider}/{model}"
    overrides.split_model_id(model_id, _known(catalog))
    await overrides.delete_override(session, model_id)
    await session.commit()
    await catalog.load_overrides(session)
