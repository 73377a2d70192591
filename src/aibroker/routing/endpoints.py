"""The routing admin API (platform service key): CRUD for every routing table, the full
matrix, and a dry-run resolve. Changes apply here at once and in other processes within
a few seconds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.deps import db_session, require_admin
from aibroker.errors import InvalidRequest
from aibroker.gateway.http import services
from aibroker.kit.clock import utcnow
from aibroker.models import (
    Organization,
    RoutingFeature,
    RoutingFeatureProvider,
    RoutingGroupOverride,
    RoutingPlanMatrix,
    RoutingProvider,
)
from aibroker.routing import schemas as s
from aibroker.routing import views
from aibroker.routing.limits import resolve_for_request
from aibroker.routing.router import find_runtime
from aibroker.routing.runtime import RoutingRuntime
from aibroker.routing.service import RoutingService

router = APIRouter(prefix="/api/admin/routing", tags=["Routing matrix (admin)"], dependencies=[Depends(require_admin)])


def _runtime(request: Request) -> RoutingRuntime:
    runtime = find_runtime(services(request))
    if runtime is None:  # pragma: no cover - app.py always wires it
        raise InvalidRequest("Routing is not enabled in this broker.")
    return runtime


def _service(request: Request, session: AsyncSession) -> RoutingService:
    return RoutingService(session, services(request).catalog)


async def _done(request: Request, session: AsyncSession) -> None:
    """Commit, then reload this process's snapshot (others follow within seconds)."""
    await session.commit()
    await _runtime(request).reload()


# -- vocabulary -----------------------------------------------------------------------------


@router.get("/vocabulary")
async def get_vocabulary(request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """The plans and profiles the matrix may name."""
    plans, profiles = await _service(request, session).vocabulary()
    return {"plans": plans, "profiles": profiles}


@router.put("/vocabulary")
async def put_vocabulary(body: s.Vocabulary, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Replace the known plans and profiles (`default` is always a profile)."""
    service = _service(request, session)
    await service.set_vocabulary(body.plans, body.profiles)
    plans, profiles = await service.vocabulary()
    await _done(request, session)
    return {"plans": plans, "profiles": profiles}


# -- providers ------------------------------------------------------------------------------


@router.get("/providers")
async def list_providers(session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Every provider the matrix may name."""
    rows = (await session.scalars(select(RoutingProvider).order_by(RoutingProvider.slug))).all()
    return {"data": [views.provider_view(p) for p in rows]}


@router.post("/providers", status_code=201)
async def create_provider(body: s.ProviderCreate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Add a provider (its slug is the catalog's provider name, e.g. `openai`)."""
    row = await _service(request, session).save_provider(body)
    await _done(request, session)
    return views.provider_view(row)


@router.patch("/providers/{row_id}")
async def update_provider(row_id: str, body: s.ProviderUpdate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Change a provider; `status: disabled` takes it out of every route."""
    row = await _service(request, session).update_provider(row_id, body)
    await _done(request, session)
    return views.provider_view(row)


@router.delete("/providers/{row_id}", status_code=204)
async def delete_provider(row_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> None:
    """Delete a provider with its matrix rows, defaults and overrides."""
    await _service(request, session).delete(RoutingProvider, row_id)
    await _done(request, session)


# -- features -------------------------------------------------------------------------------


@router.get("/features")
async def list_features(session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Every feature."""
    rows = (await session.scalars(select(RoutingFeature).order_by(RoutingFeature.slug))).all()
    return {"data": [views.feature_view(f) for f in rows]}


@router.post("/features", status_code=201)
async def create_feature(body: s.FeatureCreate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Add a feature; `mode: consensus` makes its voting providers answer together."""
    row = await _service(request, session).save_feature(body)
    await _done(request, session)
    return views.feature_view(row)


@router.patch("/features/{row_id}")
async def update_feature(row_id: str, body: s.FeatureUpdate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Change a feature."""
    row = await _service(request, session).update_feature(row_id, body)
    await _done(request, session)
    return views.feature_view(row)


@router.delete("/features/{row_id}", status_code=204)
async def delete_feature(row_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> None:
    """Delete a feature with its matrix rows, defaults and overrides."""
    await _service(request, session).delete(RoutingFeature, row_id)
    await _done(request, session)


# -- feature providers ----------------------------------------------------------------------


@router.get("/feature-providers")
async def list_feature_providers(session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Every feature's default providers, with role and weight."""
    return {"data": await views.list_feature_providers(session, await views.Names.load(session))}


@router.post("/feature-providers", status_code=201)
async def create_feature_provider(body: s.FeatureProviderCreate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Add a default provider to a feature (role: analysis | voting | consensus | generation)."""
    row = await _service(request, session).save_feature_provider(body)
    await _done(request, session)
    return views.feature_provider_view(row, await views.Names.load(session))


@router.patch("/feature-providers/{row_id}")
async def update_feature_provider(row_id: str, body: s.FeatureProviderUpdate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Change a feature's default provider (role, weight, active)."""
    row = await _service(request, session).update_feature_provider(row_id, body)
    await _done(request, session)
    return views.feature_provider_view(row, await views.Names.load(session))


@router.delete("/feature-providers/{row_id}", status_code=204)
async def delete_feature_provider(row_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> None:
    """Remove a feature's default provider."""
    await _service(request, session).delete(RoutingFeatureProvider, row_id)
    await _done(request, session)


# -- plan matrix ----------------------------------------------------------------------------


@router.get("/matrix")
async def full_matrix(request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """The full configuration: vocabulary, providers, features, defaults, matrix, overrides."""
    names = await views.Names.load(session)
    service = _service(request, session)
    plans, profiles = await service.vocabulary()
    return {
        "version": (await service.state()).version,
        "plans": plans,
        "profiles": profiles,
        "providers": [views.provider_view(p) for p in names.providers.values()],
        "features": [views.feature_view(f) for f in (await session.scalars(select(RoutingFeature).order_by(RoutingFeature.slug))).all()],
        "feature_providers": await views.list_feature_providers(session, names),
        "matrix": await views.list_matrix(session, names),
        "overrides": await views.list_overrides(session, names),
    }


@router.post("/matrix", status_code=201)
async def create_matrix_row(body: s.MatrixRowCreate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Add a plan x feature x profile row (provider, model, daily and monthly limits)."""
    row = await _service(request, session).save_matrix_row(body)
    await _done(request, session)
    return views.matrix_view(row, await views.Names.load(session))


@router.patch("/matrix/{row_id}")
async def update_matrix_row(row_id: str, body: s.MatrixRowUpdate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Change a matrix row (model, limits, active, origin, priority)."""
    row = await _service(request, session).update_matrix_row(row_id, body)
    await _done(request, session)
    return views.matrix_view(row, await views.Names.load(session))


@router.delete("/matrix/{row_id}", status_code=204)
async def delete_matrix_row(row_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> None:
    """Remove a matrix row."""
    await _service(request, session).delete(RoutingPlanMatrix, row_id)
    await _done(request, session)


# -- group overrides ------------------------------------------------------------------------


@router.get("/overrides")
async def list_overrides(session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Every group and user override (expired ones included: they never apply)."""
    return {"data": await views.list_overrides(session, await views.Names.load(session))}


@router.post("/overrides", status_code=201)
async def create_override(body: s.OverrideCreate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Give a group (or one user) another provider for a feature, until `valid_until`."""
    row = await _service(request, session).save_override(body)
    await _done(request, session)
    return views.override_view(row, await views.Names.load(session))


@router.patch("/overrides/{row_id}")
async def update_override(row_id: str, body: s.OverrideUpdate, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Change an override (provider, model, expiry, priority)."""
    row = await _service(request, session).update_override(row_id, body)
    await _done(request, session)
    return views.override_view(row, await views.Names.load(session))


@router.delete("/overrides/{row_id}", status_code=204)
async def delete_override(row_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> None:
    """Remove an override."""
    await _service(request, session).delete(RoutingGroupOverride, row_id)
    await _done(request, session)


# -- dry run --------------------------------------------------------------------------------


@router.post("/resolve")
async def resolve(body: s.ResolveRequest, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Dry run: what would serve this context and why (with `organization_id`, the limits
    are checked against that organization's usage too)."""
    service = _service(request, session)
    plan = await service.check_plan(body.plan)
    await service.check_profile(body.profile)
    snapshot = _runtime(request).current()
    if body.feature not in snapshot.features:
        await service.feature_by_slug(body.feature)  # 400 unknown_feature when it does not exist at all
    timezone = None
    if body.organization_id:
        org = await session.get(Organization, body.organization_id)
        if org is None:
            raise InvalidRequest(f"No organization '{body.organization_id}'.", param="organization_id")
        timezone = org.timezone
    decision = await resolve_for_request(
        session, snapshot, user=body.user_id, feature=body.feature, plan=plan, profile=body.profile, group=body.group,
        organization_id=body.organization_id, timezone=timezone, now=utcnow(),
    )
    res = decision.resolution
    answer: dict[str, Any] = {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "message": decision.message,
        "candidates": [c.as_dict() for c in res.candidates],
        "mode": res.feature.mode if res.feature else "single",
        "version": snapshot.version,
    }
    if decision.limits is not None:
        v = decision.limits
        answer["usage"] = {"today": v.used_today, "this_month": v.used_this_month,
                           "reset_at": v.reset_at.isoformat() if v.reset_at else None}
    return answer
