"""/console/playground: the AI playground. A chat whose answers stream through the AI
conversations service (POST /api/ai/conversations/{id}/messages, the same gateway path:
routed, limited, charged, recorded), with each answer's cost; a model picker and an optional
prompt template with its variables. Any member (USE_AI_BROKER) uses it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from aibroker.ai import conversations_endpoints as conversations
from aibroker.ai import conversations_service, templates_service
from aibroker.ai.schemas import ConversationCreate, ConversationMessage
from aibroker.deps import db_session
from aibroker.errors import InvalidRequest
from aibroker.gateway.http import JSONResponse, read_json, services, validate
from aibroker.tenancy.roles import Permission
from aibroker.web.auth import ConsoleUser, action, page
from aibroker.web.nav import NavEntry
from aibroker.web.pages.ai_caller import models_of_kind, principal_of
from aibroker.web.render import render

router = APIRouter()
NAV = [NavEntry("Playground", "/console/playground", Permission.USE_AI_BROKER)]
API = "/console/api/playground"
RECENT = 20
TEMPLATES_SHOWN = 200
_session = Depends(db_session, scope="function")
_use_page = page(Permission.USE_AI_BROKER)
_use_action = action(Permission.USE_AI_BROKER)


class TemplateChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=60)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    variables: dict[str, Any] = Field(default_factory=dict)


class PlaygroundMessage(BaseModel):
    """A turn: the typed text, and optionally a template rendered into it."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(default="", max_length=100_000)
    template: TemplateChoice | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)


class RenderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variables: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)


async def _page(request: Request, user: ConsoleUser, session: AsyncSession, conversation: Any = None,
                messages: list[Any] | None = None) -> Response:
    who = principal_of(user)
    templates = await templates_service.list_templates(session, who, category=None, public=None, limit=TEMPLATES_SHOWN, offset=0)
    recent = await conversations_service.list_for(session, who, limit=RECENT, offset=0)
    return render(request, "playground.html", title="Playground", api=API, models=models_of_kind(request),
                  templates=[templates_service.template_view(t) for t in templates], recent=recent,
                  conversation=conversation, messages=messages or [],
                  can_write_templates=user.can(Permission.MANAGE_KEYS))


@router.get("/console/playground")
async def playground(request: Request, user: ConsoleUser = Depends(_use_page), session: AsyncSession = _session) -> Response:
    """The playground: a new chat, the recent conversations, the templates to pick from."""
    return await _page(request, user, session)


@router.get("/console/playground/conversations/{conversation_id}")
async def conversation_page(conversation_id: str, request: Request, user: ConsoleUser = Depends(_use_page),
                            session: AsyncSession = _session) -> Response:
    """An earlier conversation (the member's own; anyone else's is a 404), to read and go on with."""
    row = await conversations_service.get(session, principal_of(user), conversation_id[:100])
    messages = [conversations_service.message_view(m) for m in await conversations_service.messages(session, row.id)]
    return await _page(request, user, session, conversations_service.conversation_view(row), messages)


@router.post(API + "/conversations")
async def start_conversation(request: Request, user: ConsoleUser = Depends(_use_action), session: AsyncSession = _session) -> Response:
    """Start a conversation with the chosen model (`{"model": "mock/mock-chat" | null}`)."""
    body = validate(ConversationCreate, await read_json(request))
    created = await conversations.create_conversation(body, request, principal_of(user), session)
    return JSONResponse(created, status_code=201)


@router.post(API + "/conversations/{conversation_id}/messages")
async def send_message(conversation_id: str, request: Request, user: ConsoleUser = Depends(_use_action)) -> Response:
    """Answer a turn as Server-Sent Events (`delta`, then `message` with `cost_micros` and
    `request_id`), through the conversations service. A template of role `user` leads the
    message; one of role `system` becomes the conversation's instructions. Its use is counted."""
    turn = validate(PlaygroundMessage, await read_json(request))
    who = principal_of(user)
    content = turn.content.strip()
    if turn.template is not None:
        content = await _apply_template(request, who, conversation_id[:100], turn.template, content)
    message = validate(ConversationMessage, {"content": content, "stream": True, "max_tokens": turn.max_tokens,
                                             "temperature": turn.temperature})
    return await conversations.post_message(conversation_id[:100], message, request, who)


async def _apply_template(request: Request, who: Any, conversation_id: str, choice: TemplateChoice, text: str) -> str:
    """The turn's text with the template rendered in (as the `template` field of the AI routes does)."""
    async with services(request).db.sessions() as session:
        row = await conversations_service.get(session, who, conversation_id)  # 404 before anything is counted
        rendered = await templates_service.render_template(session, who, choice.id, choice.version, choice.variables)
        if rendered["role"] == "system":
            if not text:
                raise InvalidRequest("A system template sets the instructions: write the message too.", param="content")
            row.system_prompt = rendered["content"]
        else:
            text = f"{rendered['content']}\n\n{text}" if text else rendered["content"]
        await templates_service.count_use(session, choice.id)
        await session.commit()
    return text


@router.post(API + "/templates/{template_id}/render")
async def render_dry_run(template_id: str, request: Request, user: ConsoleUser = Depends(_use_action),
                         session: AsyncSession = _session) -> Response:
    """Dry run of a template with these variables (no model call, not counted as a use)."""
    body = validate(RenderBody, await read_json(request))
    rendered = await templates_service.render_template(session, principal_of(user), template_id[:60], body.version, body.variables)
    return JSONResponse(rendered)

