"""Platform pages: the routing matrix (view, edit a row) and the dry-run resolve, through the
routing service and snapshot that /api/admin/routing uses."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from aibroker.errors import BrokerError, InvalidRequest
from aibroker.gateway.http import services
from aibroker.kit.clock import utcnow
from aibroker.models import Organization, RoutingFeature, RoutingPlanMatrix
from aibroker.routing import schemas as s
from aibroker.routing import views
from aibroker.routing.limits import resolve_for_request
from aibroker.routing.router import find_runtime
from aibroker.routing.runtime import RoutingRuntime
from aibroker.routing.service import RoutingService
from aibroker.web.pages import admin_common as common

router = APIRouter(prefix="/console/admin/routing", include_in_schema=False, dependencies=[Depends(common.super_admin)])
NAV = common.nav("Routing", "/console/admin/routing")
ORIGINS = ("default", "promo", "exclusive")


def _runtime(request: Request) -> RoutingRuntime:
    runtime = find_runtime(services(request))
    if runtime is None:  # pragma: no cover - app.py always wires it
        raise InvalidRequest("Routing is not enabled in this broker.")
    return runtime


def _service(request: Request, session: AsyncSession) -> RoutingService:
    return RoutingService(session, services(request).catalog)


async def _overview(request: Request, session: AsyncSession) -> dict[str, Any]:
    names = await views.Names.load(session)
    service = _service(request, session)
    plans, profiles = await service.vocabulary()
    features = (await session.scalars(select(RoutingFeature.slug).order_by(RoutingFeature.slug))).all()
    return {"matrix": await views.list_matrix(session, names), "plans": plans, "profiles": profiles,
            "features": list(features), "version": (await service.state()).version}


async def _resolve(request: Request, session: AsyncSession, body: s.ResolveRequest) -> dict[str, Any]:
    """The same checks and decision as POST /api/admin/routing/resolve."""
    service = _service(request, session)
    plan = await service.check_plan(body.plan)
    await service.check_profile(body.profile)
    snapshot = _runtime(request).current()
    if body.feature not in snapshot.features:
        await service.feature_by_slug(body.feature)  # unknown_feature when it does not exist at all
    org = None
    if body.organization_id:  # its usage is checked against the limits too
        org = await session.scalar(select(Organization).where(
            (Organization.id == body.organization_id) | (Organization.slug == body.organization_id)))
        if org is None:
            raise InvalidRequest(f"No organization '{body.organization_id}'.", param="organization_id")
    decision = await resolve_for_request(
        session, snapshot, user=body.user_id, feature=body.feature, plan=plan, profile=body.profile, group=body.group,
        organization_id=org.id if org else None, timezone=org.timezone if org else None, now=utcnow(),
    )
    res = decision.resolution
    usage = None
    if decision.limits is not None:
        usage = {"today": decision.limits.used_today, "this_month": decision.limits.used_this_month}
    return {"allowed": decision.allowed, "reason": decision.reason, "message": decision.message,
            "candidates": [c.as_dict() for c in res.candidates], "mode": res.feature.mode if res.feature else "single",
            "version": snapshot.version, "usage": usage}


@router.get("")
async def matrix(request: Request, session: AsyncSession = common.SESSION) -> Response:
    """The plan x feature x profile matrix, and the dry-run form."""
    return common.page(request, "admin/routing.html", title="Routing matrix", asked={}, result=None,
                       **await _overview(request, session))


@router.get("/resolve")
async def dry_run(request: Request, plan: str = "", feature: str = "", profile: str = "default", group: str = "",
                  organization: str = "", session: AsyncSession = common.SESSION) -> Response:
    """Dry run: which provider and model a (feature, plan, profile, group) would get, and why;
    with an organization (id or slug), its usage is checked against the row's limits."""
    asked = {"plan": plan, "feature": feature, "profile": profile or "default", "group": group, "organization": organization}
    result, error = None, None
    try:
        body = s.ResolveRequest(plan=plan[:40], feature=feature[:80], profile=(profile or "default")[:40], group=group[:80] or None,
                                organization_id=organization.strip()[:80] or None)
        if not body.plan or not body.feature:
            raise InvalidRequest("choose a plan and a feature", param="feature")
        result = await _resolve(request, session, body)
    except BrokerError as exc:
        error = exc
    return common.page(request, "admin/routing.html", title="Routing matrix", asked=asked, result=result, error=error,
                       status_code=error.status_code if error else 200, **await _overview(request, session))


async def _row(request: Request, session: AsyncSession, row_id: str) -> dict[str, Any]:
    row = await _service(request, session).get(RoutingPlanMatrix, row_id)  # 404 when unknown
    return views.matrix_view(row, await views.Names.load(session))


@router.get("/matrix/{row_id}")
async def edit_row(request: Request, row_id: str, session: AsyncSession = common.SESSION) -> Response:
    """The form to change one matrix row."""
    return common.page(request, "admin/routing_row.html", title="Edit routing row", row=await _row(request, session, row_id),
                       origins=ORIGINS, form=None)


def _limit(text: str, name: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise InvalidRequest(f"{name.replace('_', ' ')} is a whole number (empty: unlimited)", param=name) from exc


def _update(form: dict[str, str]) -> s.MatrixRowUpdate:
    try:
        priority = int(form.get("priority", "0").strip() or "0")
    except ValueError as exc:
        raise InvalidRequest("priority is a whole number (lower is tried first)", param="priority") from exc
    fields: dict[str, Any] = {
        "daily_limit": _limit(form.get("daily_limit", ""), "daily_limit"),
        "monthly_limit": _limit(form.get("monthly_limit", ""), "monthly_limit"),
        "active": form.get("active") == "on", "origin": form.get("origin", "default"), "priority": priority,
    }
    if form.get("model", "").strip():
        fields["model"] = form["model"].strip()
    try:
        return s.MatrixRowUpdate(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidRequest(f"{first['loc'][0]}: {first['msg']}", param=str(first["loc"][0])) from exc


@router.post("/matrix/{row_id}", dependencies=[Depends(common.csrf)])
async def save_row(request: Request, row_id: str, session: AsyncSession = common.SESSION) -> Response:
    """Change a matrix row as PATCH /api/admin/routing/matrix/{id}; this process reloads at once."""
    current = await _row(request, session, row_id)
    form = await common.form(request)
    try:
        await _service(request, session).update_matrix_row(row_id, _update(form))
        await session.commit()
    except BrokerError as error:
        await session.rollback()
        return common.page(request, "admin/routing_row.html", title="Edit routing row", row=current, origins=ORIGINS,
                           form=form, error=error, status_code=error.status_code)
    await _runtime(request).reload()
    return common.redirect(request, "/console/admin/routing", f"Saved the row {current['plan']} / {current['feature']} / {current['profile']}.")
