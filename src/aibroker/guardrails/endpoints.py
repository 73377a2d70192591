"""GET / PUT /api/organizations/{id}/guardrails: an organization's guardrails (OWNER, ADMIN,
or the platform)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.catalog.registry import MODERATION
from aibroker.deps import db_session
from aibroker.errors import BrokerError, InvalidRequest, PermissionDenied
from aibroker.gateway.http import authenticate, services
from aibroker.guardrails.policy import MAX_RULE_CHARS, MAX_RULES, compile_rules
from aibroker.kit.clock import utcnow
from aibroker.models import GuardrailSettings
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import SUPER_ADMIN, Role

router = APIRouter(tags=["Guardrails"])

MANAGERS = frozenset({Role.OWNER, Role.ADMIN, SUPER_ADMIN})
Rule = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_RULE_CHARS)]


class Guardrails(BaseModel):
    """An organization's guardrails. They apply to every chat call of the organization
    (`/v1/chat/completions`, `/v1/responses`, `/v1/messages`, `/v1/completions`,
    `/api/ai/broker`, the auto-responder), streamed or not."""

    redact_input_pii: bool = Field(default=False, description="Replace e-mail addresses, card numbers and phone numbers in prompts with [EMAIL], [CARD], [PHONE] before they leave the broker.")
    redact_output_pii: bool = Field(default=False, description="The same in answers, streamed answers included.")
    moderate_input: bool = Field(default=False, description="Check prompts with the rules and / or the moderation model.")
    moderate_output: bool = Field(default=False, description="Check answers too (a streamed answer is then sent only once it is complete and checked).")
    action: Literal["block", "redact", "flag"] = Field(
        default="block", description="What a flagged text gets: `block` (400 `content_flagged`), `redact` (flagged rule matches "
                                     "become [REDACTED]; a text the model flags becomes '[content removed by moderation]') or `flag` (passes, marked).")
    moderation_model: str | None = Field(
        default=None, max_length=200, description="A moderation model of the catalog (e.g. `omni-moderation-latest`, `mock-moderation`), "
                                                 "called through the gateway at cost 0; null: the rules only.")
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES,
                              description="Words or phrases (whole words, any case) or `/regex/` entries that flag a text.")


class GuardrailsView(Guardrails):
    organization_id: str = Field(description="The organization these guardrails belong to.")
    updated_at: dt.datetime | None = Field(default=None, description="When they were last changed (null: never set).")


async def _manager(request: Request, organization_id: str) -> Principal:
    who = await authenticate(request, acting_for=organization_id, permission=None)
    if who.role not in MANAGERS:
        raise PermissionDenied("Only an OWNER or ADMIN of the organization (or the platform) manages its guardrails.",
                               code="role_required", extra={"roles": sorted(MANAGERS)})
    return who


def _view(organization_id: str, row: GuardrailSettings | None) -> GuardrailsView:
    if row is None:
        return GuardrailsView(organization_id=organization_id)
    return GuardrailsView(
        organization_id=organization_id, redact_input_pii=row.redact_input_pii, redact_output_pii=row.redact_output_pii,
        moderate_input=row.moderate_input, moderate_output=row.moderate_output, action=row.action,  # type: ignore[arg-type]
        moderation_model=row.moderation_model, rules=list(row.rules or []), updated_at=row.updated_at,
    )


@router.get("/api/organizations/{organization_id}/guardrails", response_model=GuardrailsView)
async def get_guardrails(organization_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> GuardrailsView:
    """The organization's guardrails (all off until set)."""
    who = await _manager(request, organization_id)
    return _view(who.organization_id, await session.get(GuardrailSettings, who.organization_id))


@router.put("/api/organizations/{organization_id}/guardrails", response_model=GuardrailsView)
async def put_guardrails(
    organization_id: str, body: Guardrails, request: Request, session: AsyncSession = Depends(db_session, scope="function")
) -> GuardrailsView:
    """Replace the organization's guardrails. Seen at once by this process, by the others
    within AIBROKER_GUARDRAILS_CACHE_SECONDS."""
    who = await _manager(request, organization_id)
    compile_rules(body.rules)  # 400 `invalid_rule` naming a bad regex
    model = body.moderation_model.strip() if body.moderation_model else None
    if model:
        _check_model(request, model)
    if (body.moderate_input or body.moderate_output) and not model and not body.rules:
        raise InvalidRequest("Moderation needs a moderation_model, rules, or both.", param="moderation_model",
                             code="moderation_unconfigured")
    row = await session.get(GuardrailSettings, who.organization_id)
    if row is None:
        row = GuardrailSettings(organization_id=who.organization_id)
        session.add(row)
    row.redact_input_pii, row.redact_output_pii = body.redact_input_pii, body.redact_output_pii
    row.moderate_input, row.moderate_output, row.action = body.moderate_input, body.moderate_output, body.action
    row.moderation_model, row.rules, row.updated_at = model, list(body.rules), utcnow()
    await session.flush()
    view = _view(who.organization_id, row)
    await session.commit()
    guardrails = services(request).gateway.guardrails
    if guardrails is not None:
        guardrails.book.forget(who.organization_id)
    return view


def _check_model(request: Request, name: str) -> None:
    try:
        entry = services(request).catalog.resolve(name)
    except BrokerError as exc:
        raise InvalidRequest(exc.message, param="moderation_model", code="unknown_model") from None
    if entry.kind != MODERATION:
        raise InvalidRequest(f"'{name}' is a {entry.kind} model, not a moderation model.", param="moderation_model",
                             code="not_a_moderation_model")
