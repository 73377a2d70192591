"""Who is signed in to the console, in which organization, with which role.

Page routes declare what they need:

    user: ConsoleUser = Depends(page(Permission.VIEW_USAGE))      # GET: read a page
    user: ConsoleUser = Depends(action(Permission.MANAGE_KEYS))   # POST: change something (CSRF checked)
    user: ConsoleUser = Depends(admin_page()) / Depends(admin_action())   # SUPER_ADMIN only

Signed out -> SignedOut (redirect to /console/login, 401 under /console/api); the role lacks
the permission -> Forbidden (403). Roles come from aibroker.tenancy.roles, as for the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.gateway.http import services
from aibroker.models import Membership, Organization, User
from aibroker.tenancy import users
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import SUPER_ADMIN, permissions_for
from aibroker.web import csrf, sessions
from aibroker.web.errors import Forbidden, PageNotFound, SignedOut


@dataclass
class ConsoleUser:
    user: User
    session_id: str
    csrf_token: str
    memberships: list[tuple[Membership, Organization]]
    organization: Organization | None  # the one being looked at (None: member of none)
    role: str | None  # the membership's role; SUPER_ADMIN for a platform admin outside their memberships
    permissions: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_super_admin(self) -> bool:
        return bool(self.user.is_super_admin)

    @property
    def organization_id(self) -> str:
        """The current organization's id (pages that need one are behind `page()`, which ensures it)."""
        if self.organization is None:
            raise Forbidden("You are not a member of any organization yet.")
        return self.organization.id

    def can(self, permission: str | None) -> bool:
        return permission is None or permission in self.permissions

    def principal(self) -> Principal:
        """This user acting in the current organization, as the JSON API's services see a signed-in user."""
        org = self.organization
        if org is None:
            raise Forbidden("You are not a member of any organization yet.")
        return Principal(organization_id=org.id, organization_slug=org.slug, plan=org.plan, margin_bps=org.margin_bps,
                         timezone=org.timezone, user_id=self.user.id, is_platform_admin=self.is_super_admin,
                         role=SUPER_ADMIN if self.is_super_admin else self.role, permissions=self.permissions, via="user")


def _choose(memberships: list[tuple[Membership, Organization]], wanted: str | None) -> tuple[Membership, Organization] | None:
    for membership, org in memberships:
        if org.id == wanted:
            return membership, org
    return memberships[0] if memberships else None


async def load(request: Request, session: AsyncSession) -> ConsoleUser:
    """The signed-in console user for this request's cookie (SignedOut when there is none)."""
    cached = getattr(request.state, "console_user", None)
    if cached is not None:
        return cached
    found = await sessions.find(session, request.cookies.get(sessions.COOKIE))
    if found is None:
        raise SignedOut("Your session has ended; sign in again.")
    row, user = found
    memberships = await users.memberships_of(session, user.id)
    chosen = _choose(memberships, row.organization_id)
    organization, role = (chosen[1], chosen[0].role) if chosen else (None, None)
    if user.is_super_admin and row.organization_id and (organization is None or organization.id != row.organization_id):
        # A platform admin may look at any organization (the admin pages switch into one).
        other = await session.get(Organization, row.organization_id)
        if other is not None:
            organization, role = other, SUPER_ADMIN
    if user.is_super_admin and organization is None:
        role = SUPER_ADMIN
    permissions = permissions_for(role, super_admin=user.is_super_admin)
    secret = services(request).settings.server.secret_key
    console_user = ConsoleUser(user, row.id, csrf.token_for(secret, row.id), memberships, organization, role, permissions)
    request.state.console_user = console_user
    return console_user


async def _with_session(request: Request) -> ConsoleUser:
    async with services(request).db.sessions() as session:
        console_user = await load(request, session)
        session.expunge_all()  # plain objects from here on: the page reads them after the session closed
        return console_user


def signed_in(*, check_csrf: bool = False) -> Callable[[Request], Awaitable[ConsoleUser]]:
    """Any signed-in user (with or without an organization)."""

    async def dependency(request: Request) -> ConsoleUser:
        console_user = await _with_session(request)
        if check_csrf:
            await csrf.verify(request, console_user.csrf_token)
        return console_user

    return dependency


def page(permission: str | None = None, *, check_csrf: bool = False) -> Callable[[Request], Awaitable[ConsoleUser]]:
    """A tenant page: signed in, in an organization, holding `permission` there."""

    async def dependency(request: Request) -> ConsoleUser:
        console_user = await _with_session(request)
        if check_csrf:
            await csrf.verify(request, console_user.csrf_token)
        if console_user.organization is None:
            raise Forbidden("You are not a member of any organization yet: ask an owner to invite you.")
        if not console_user.can(permission):
            raise Forbidden(f"Your role ({console_user.role}) does not allow this: it needs {permission}.")
        return console_user

    dependency.__name__ = f"console_page_{str(permission or 'any').lower()}"
    return dependency


def action(permission: str | None = None) -> Callable[[Request], Awaitable[ConsoleUser]]:
    """A state-changing tenant route: `page(permission)` plus the CSRF check."""
    return page(permission, check_csrf=True)


def admin_page(*, check_csrf: bool = False) -> Callable[[Request], Awaitable[ConsoleUser]]:
    """A platform page: SUPER_ADMIN only."""

    async def dependency(request: Request) -> ConsoleUser:
        console_user = await _with_session(request)
        if check_csrf:
            await csrf.verify(request, console_user.csrf_token)
        if not console_user.is_super_admin:
            raise Forbidden("This page is for the platform administrator (SUPER_ADMIN).")
        return console_user

    return dependency


def admin_action() -> Callable[[Request], Awaitable[ConsoleUser]]:
    return admin_page(check_csrf=True)


def own(console_user: ConsoleUser, organization_id: str | None) -> None:
    """404 unless `organization_id` (of a row a URL named) is the current organization's."""
    if organization_id is None or console_user.organization is None or organization_id != console_user.organization.id:
        raise PageNotFound("There is no such item in this organization.")
