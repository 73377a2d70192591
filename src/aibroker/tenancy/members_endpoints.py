"""Member management routes: change a role, remove a member or leave, pending invitations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.deps import db_session
from aibroker.gateway.http import authenticate, services
from aibroker.tenancy import members
from aibroker.tenancy.roles import Permission

router = APIRouter(tags=["Organizations and members"])


class MemberUpdate(BaseModel):
    role: str = Field(max_length=40, description="OWNER, ADMIN, AGENT, DISTRIBUTOR or MEMBER (also PROPIETARIO, AGENTE, DISTRIBUIDOR).")


@router.patch("/api/organizations/{organization_id}/members/{user_id}")
async def update_member(organization_id: str, user_id: str, body: MemberUpdate, request: Request,
                        session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Change a member's role. Only an OWNER grants or takes away OWNER and ADMIN (403
    `role_not_allowed`); the last OWNER cannot be demoted (409 `last_owner`); a user who is not
    a member is 404 `not_a_member`; an unknown role is 400."""
    who = await authenticate(request, acting_for=organization_id, permission=Permission.MANAGE_MEMBERS)
    view = await members.change_role(session, who, user_id=user_id, role=body.role)
    await session.commit()
    services(request).auth.forget()  # the new role applies at once here; elsewhere within AIBROKER_AUTH_CACHE_SECONDS
    return view


@router.delete("/api/organizations/{organization_id}/members/{user_id}")
async def remove_member(organization_id: str, user_id: str, request: Request,
                        session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Remove a member (MANAGE_MEMBERS; an OWNER or ADMIN only by an OWNER), or leave the
    organization when `user_id` is yourself. The last OWNER cannot leave (409 `last_owner`).
    The member's access ends at once; left in no organization, their refresh tokens are revoked."""
    who = await authenticate(request, acting_for=organization_id, permission=None)
    result = await members.remove(session, who, user_id=user_id)
    await session.commit()
    services(request).auth.forget()
    return result


@router.get("/api/organizations/{organization_id}/invitations")
async def list_invitations(organization_id: str, request: Request,
                           session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Pending invitations (not accepted, not expired). Tokens are never listed."""
    who = await authenticate(request, acting_for=organization_id, permission=Permission.MANAGE_MEMBERS)
    return {"data": await members.pending_invitations(session, who.organization_id)}


@router.delete("/api/organizations/{organization_id}/invitations/{invitation_id}")
async def revoke_invitation(organization_id: str, invitation_id: str, request: Request,
                            session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Revoke a pending invitation: its token stops working."""
    who = await authenticate(request, acting_for=organization_id, permission=Permission.MANAGE_MEMBERS)
    result = await members.revoke_invitation(session, who, invitation_id=invitation_id)
    await session.commit()
    return result
