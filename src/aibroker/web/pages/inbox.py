"""/console/inbox: conversations by status, one thread, a human reply (queued for the channel's
sender job, as POST /api/conversations/{id}/messages), handoff to the AI or a human, status
changes. The list and the thread refresh without a reload: msg/inbox.js polls the fragments
under /console/api/inbox and announces new messages in an aria-live region."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from aibroker.deps import db_session
from aibroker.messaging import agent, conversations
from aibroker.messaging.schemas import AgentMessage, ConversationUpdate, Handoff
from aibroker.models import Conversation, Lead
from aibroker.tenancy.roles import Permission
from aibroker.web.auth import ConsoleUser, action, page
from aibroker.web.errors import ConsoleError
from aibroker.web.flash import flash
from aibroker.web.nav import NavEntry
from aibroker.web.render import env, render

router = APIRouter()
NAV = [NavEntry("Inbox", "/console/inbox", Permission.MANAGE_CHANNELS)]
FILTERS = ("all", *conversations.STATES)
LIST_LIMIT = 100
THREAD_LIMIT = 200


class BadForm(ConsoleError):
    status_code = 400
    title = "Please check the form"


def _status_filter(status: str) -> str | None:
    if status not in FILTERS:
        raise BadForm(f"status must be one of {', '.join(FILTERS)}.")
    return None if status == "all" else status


def lead_label(lead: Lead | None) -> str:
    if lead is None:
        return "Unknown contact"
    return lead.name or lead.phone or lead.external_user_id


async def _rows(session: AsyncSession, organization_id: str, status: str | None) -> list[dict[str, Any]]:
    found = await conversations.list_scoped(session, organization_id, status=status, limit=LIST_LIMIT)
    ids = {c.lead_id for c in found}
    by_id = {lead.id: lead for lead in await session.scalars(
        select(Lead).where(Lead.organization_id == organization_id, Lead.id.in_(ids)))} if ids else {}
    return [{**conversations.conversation_view(c), "lead": lead_label(by_id.get(c.lead_id))} for c in found]


async def _thread(session: AsyncSession, user: ConsoleUser, conversation_id: str) -> dict[str, Any]:
    conversation = await conversations.get_scoped(session, user.organization_id, conversation_id)  # another org's: 404
    lead = await session.get(Lead, conversation.lead_id)
    messages = [conversations.message_view(m) for m in await conversations.history(session, conversation.id, THREAD_LIMIT)]
    return {"conversation": conversations.conversation_view(conversation), "lead": lead_label(lead), "messages": messages,
            "lead_id": conversation.lead_id}


def _part(template: str, **context: Any) -> str:
    return env.get_template(template).render(**context)


@router.get("/console/inbox")
async def inbox(request: Request, status: str = Query(default="all", max_length=20), user: ConsoleUser = Depends(page(Permission.MANAGE_CHANNELS)),
                session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """Conversations, most recent first, filtered by status (MANAGE_CHANNELS)."""
    rows = await _rows(session, user.organization_id, _status_filter(status))
    return render(request, "msg/inbox.html", title="Inbox", rows=rows, status=status, filters=FILTERS)


@router.get("/console/api/inbox")
async def inbox_live(status: str = Query(default="all", max_length=20), user: ConsoleUser = Depends(page(Permission.MANAGE_CHANNELS)),
                     session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """The conversation list as an HTML fragment, for msg/inbox.js."""
    rows = await _rows(session, user.organization_id, _status_filter(status))
    return JSONResponse({"parts": {"conversations": _part("msg/_conversation_rows.html", rows=rows)}},
                        headers={"cache-control": "no-store"})


@router.get("/console/inbox/{conversation_id}")
async def thread(request: Request, conversation_id: str, user: ConsoleUser = Depends(page(Permission.MANAGE_CHANNELS)),
                 session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """One conversation: its messages with their delivery status, the reply form, the handoff."""
    data = await _thread(session, user, conversation_id)
    return render(request, "msg/thread.html", title=f"Conversation with {data['lead']}", states=conversations.STATES, **data)


@router.get("/console/api/inbox/{conversation_id}")
async def thread_live(conversation_id: str, user: ConsoleUser = Depends(page(Permission.MANAGE_CHANNELS)),
                      session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """The thread's messages and state as HTML fragments, for msg/inbox.js."""
    data = await _thread(session, user, conversation_id)
    return JSONResponse({"parts": {"messages": _part("msg/_messages.html", **data), "state": _part("msg/_state.html", **data)}},
                        headers={"cache-control": "no-store"})


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _back(request: Request, conversation_id: str, message: str) -> Response:
    return flash(request, RedirectResponse(f"/console/inbox/{conversation_id}", status_code=303), message)


@router.post("/console/inbox/{conversation_id}/reply")
async def reply(request: Request, conversation_id: str, user: ConsoleUser = Depends(action(Permission.MANAGE_CHANNELS)),
                session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """A human reply: queued for the channel's sender; the agent takes the conversation."""
    await conversations.get_scoped(session, user.organization_id, conversation_id)  # another org's: 404 before 400
    try:
        body = AgentMessage(content=_field(await request.form(), "content").strip())
    except ValidationError:
        raise BadForm("Write a reply of 1 to 6000 characters.") from None
    await agent.reply(session, user.organization_id, conversation_id, body.content, user.user.id)
    return _back(request, conversation_id, "Reply queued: you are handling this conversation.")


@router.post("/console/inbox/{conversation_id}/handoff")
async def handoff(request: Request, conversation_id: str, user: ConsoleUser = Depends(action(Permission.MANAGE_CHANNELS)),
                  session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """Hand the conversation to a human (the AI stops) or back to the AI."""
    conversation = await conversations.get_scoped(session, user.organization_id, conversation_id)
    try:
        body = Handoff(to=_field(await request.form(), "to"))
    except ValidationError:
        raise BadForm("'to' must be 'ai' or 'human'.") from None
    conversations.hand_to(session, conversation, body.to)
    return _back(request, conversation_id, "Handed to the AI." if body.to == "ai" else "Handed to a human: the AI stops replying.")


@router.post("/console/inbox/{conversation_id}/status")
async def set_status(request: Request, conversation_id: str, user: ConsoleUser = Depends(action(Permission.MANAGE_CHANNELS)),
                     session: AsyncSession = Depends(db_session, scope="function")) -> Response:
    """Mark the conversation active, pending, resolved or closed."""
    conversation: Conversation = await conversations.get_scoped(session, user.organization_id, conversation_id)
    try:
        body = ConversationUpdate(status=_field(await request.form(), "status"))
    except ValidationError:
        raise BadForm(f"status must be one of {', '.join(conversations.STATES)}.") from None
    conversations.set_status(conversation, body.status)
    return _back(request, conversation_id, f"Conversation marked {body.status}.")
