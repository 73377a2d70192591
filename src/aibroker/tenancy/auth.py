"""Who is calling: a tenant API key, a user's JWT, an organization code (where allowed), or
the platform's service key acting for an organization. Each becomes a Principal carrying
the organization, the role and the permissions that apply.

API-key lookups are cached for a few seconds: the hot path must not pay a database
round trip per request. Revocation in this process drops the cache entry at once;
other processes see it within `auth_cache_seconds`.
"""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass, field
from typing import Any

from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.errors import (
    AuthenticationError,
    BrokerError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from aibroker.kit import crypto
from aibroker.kit.clock import utcnow
from aibroker.kit.crypto import hash_api_key
from aibroker.kit.singleflight import SingleFlight
from aibroker.models import ApiKey, Membership, Organization, OrganizationCode, User
from aibroker.tenancy import codes
from aibroker.tenancy.key_guard import KeyGuard, networks_of
from aibroker.tenancy.roles import (
    ALL_PERMISSIONS,
    API_KEY_PERMISSIONS,
    CODE_PERMISSIONS,
    SUPER_ADMIN,
    permissions_for,
)
from aibroker.tenancy.tokens import looks_like_jwt, verify_access_token
from limits import parse as parse_rate

ORG_HEADER = "x-organization-id"
CODE_HEADER = "x-organization-code"
CODE_USER_HEADER = "x-user-id"
ACTIVE_STATUSES = ("active", "trial")


@dataclass(frozen=True, slots=True)
class Principal:
    organization_id: str
    organization_slug: str
    plan: str
    margin_bps: int | None
    timezone: str
    api_key_id: str | None = None
    default_feature: str | None = None
    user_id: str | None = None
    is_platform_admin: bool = False
    # OWNER | ADMIN | AGENT | DISTRIBUTOR | MEMBER | SUPER_ADMIN; None for API keys and codes.
    role: str | None = None
    permissions: frozenset[str] = API_KEY_PERMISSIONS
    via: str = "api_key"  # api_key | user | code | admin
    # Routing authority an API key was granted (tenancy/routing_authority.py): the profile its
    # requests run with, and the profiles / groups its requests may name themselves.
    profile: str | None = None
    allowed_profiles: frozenset[str] = frozenset()
    allowed_groups: frozenset[str] = frozenset()
    # An API key's IP allowlist and request signing (tenancy/key_guard.py); None: neither.
    guard: KeyGuard | None = field(default=None, repr=False, compare=False)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> Principal:
        """This principal, or 403 naming the missing permission."""
        if permission not in self.permissions:
            who = {"api_key": "An API key", "code": "An organization code", "user": f"The {self.role} role"}.get(self.via, "This caller")
            raise PermissionDenied(
                f"{who} does not have the {permission} permission this route needs.",
                code="permission_denied",
                extra={"permission": permission},
            )
        return self


@dataclass(slots=True)
class _Cached:
    principal: Principal
    expires_at: float  # monotonic
    key_expires_at: float | None  # epoch seconds of the key's own expiry


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Authenticator:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        admin_token: str | None,
        cache_seconds: float,
        secret_key: str = "",
        code_rate_limit: str = "60/minute",
    ) -> None:
        self._sessions = sessions
        self._admin_token = admin_token
        self._cache_seconds = cache_seconds
        self._secret_key = secret_key
        self._keys: dict[str, _Cached] = {}
        self._key_loads: SingleFlight[str, _Cached] = SingleFlight()  # one query per key on a miss
        self._orgs: dict[str, _Cached] = {}
        self._codes: dict[tuple[str, str], _Cached] = {}
        # In-process limiter: a code is a low-volume credential; each process enforces it.
        self._code_limit = parse_rate(code_rate_limit)
        self._code_limiter = MovingWindowRateLimiter(MemoryStorage())
        # Set by app.py from GuardSettings: the default replay window of a signed key.
        self.signature_window_seconds = 300

    def is_admin_token(self, token: str | None) -> bool:
        return bool(token and self._admin_token and hmac.compare_digest(token, self._admin_token))

    async def authenticate(
        self,
        authorization: str | None,
        *,
        acting_for: str | None = None,
        code: str | None = None,
        code_user: str | None = None,
    ) -> Principal:
        token = bearer_token(authorization)
        if token is None:
            if code:
                return await self._from_code(code, code_user, acting_for)
            raise AuthenticationError(
                "You didn't provide an API key. Send 'Authorization: Bearer abk_...'.", code="missing_api_key"
            )
        if self.is_admin_token(token):
            if not acting_for:
                raise AuthenticationError(
                    f"The platform service key must name the organization it acts for "
                    f"('{ORG_HEADER}' header or 'organizationId').",
                    code="organization_required",
                )
            return await self.principal_for_org(acting_for, admin=True)
        if not token.startswith("abk_") and looks_like_jwt(token):
            return await self._from_jwt(token, acting_for)
        principal = await self._from_api_key(token)
        if acting_for and acting_for not in (principal.organization_id, principal.organization_slug):
            raise PermissionDenied("This API key belongs to another organization.", code="organization_mismatch")
        return principal

    async def _from_api_key(self, token: str) -> Principal:
        if not token.startswith("abk_"):
            raise AuthenticationError("Incorrect API key provided.", code="invalid_api_key")
        digest = hash_api_key(token)
        cached = self._keys.get(digest)
        now = time.monotonic()
        if cached is None or cached.expires_at < now:
            cached = await self._key_loads.run(digest, lambda: self._load_key(digest))
            self._keys[digest] = cached
        if cached.key_expires_at is not None and cached.key_expires_at <= time.time():
            raise AuthenticationError("This API key has expired.", code="expired_api_key")
        return cached.principal

    async def _load_key(self, digest: str) -> _Cached:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ApiKey, Organization).join(Organization, Organization.id == ApiKey.organization_id).where(
                        ApiKey.key_hash == digest
                    )
                )
            ).first()
        if row is None:
            raise AuthenticationError("Incorrect API key provided.", code="invalid_api_key")
        key, org = row
        if key.revoked_at is not None:
            raise AuthenticationError("This API key has been revoked.", code="revoked_api_key")
        _require_active(org)
        principal = _org_principal(
            org,
            api_key_id=key.id,
            default_feature=key.default_feature,
            user_id=key.user_id,
            profile=key.profile,
            allowed_profiles=frozenset(key.allowed_profiles or ()),
            allowed_groups=frozenset(key.allowed_groups or ()),
            guard=self._guard_of(key),
        )
        expires = key.expires_at
        if expires is not None and expires.tzinfo is None:  # SQLite drops the zone; we store UTC
            expires = expires.replace(tzinfo=utcnow().tzinfo)
        return _Cached(principal, time.monotonic() + self._cache_seconds, expires.timestamp() if expires else None)

    def _guard_of(self, key: ApiKey) -> KeyGuard | None:
        secret = None
        if key.sealed_signing_secret is not None:
            if key.signing_key_id != crypto.key_id(self._secret_key):
                raise AuthenticationError("This API key's signing secret was sealed with another secret key; set a new one.",
                                          code="signing_secret_unavailable")
            secret = crypto.unseal(bytes(key.sealed_signing_secret), self._secret_key, context=f"signing:{key.id}")
        if not key.allowed_ips and secret is None:
            return None
        return KeyGuard(networks_of(key.allowed_ips), secret, key.signing_window_seconds or self.signature_window_seconds)

    async def principal_for_org(self, ref: str, *, admin: bool) -> Principal:
        cached = self._orgs.get(ref)
        if cached is None or cached.expires_at < time.monotonic():
            async with self._sessions() as session:
                org = await session.scalar(
                    select(Organization).where((Organization.id == ref) | (Organization.slug == ref))
                )
            if org is None:
                raise NotFound(f"No organization '{ref}'.", param="organizationId")
            principal = _org_principal(
                org,
                is_platform_admin=admin,
                role=SUPER_ADMIN if admin else None,
                permissions=ALL_PERMISSIONS if admin else API_KEY_PERMISSIONS,
                via="admin" if admin else "api_key",
            )
            cached = _Cached(principal, time.monotonic() + self._cache_seconds, None)
            self._orgs[ref] = cached
        return cached.principal

    # -- users (JWT) ---------------------------------------------------------------------

    async def _from_jwt(self, token: str, acting_for: str | None) -> Principal:
        # Not cached: a member removed or demoted in any process loses the rights at once
        # (signed-in users drive the management routes, not the hot path).
        claims = verify_access_token(self._secret_key, token)
        return await self._load_user_principal(claims.user_id, acting_for)

    async def _load_user_principal(self, user_id: str, acting_for: str | None) -> Principal:
        async with self._sessions() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise AuthenticationError("This user no longer exists.", code="invalid_token")
            query = (
                select(Membership, Organization)
                .join(Organization, Organization.id == Membership.organization_id)
                .where(Membership.user_id == user_id)
            )
            if acting_for:
                query = query.where((Organization.id == acting_for) | (Organization.slug == acting_for))
            rows = (await session.execute(query)).all()
            if not rows and acting_for and user.is_super_admin:
                org = await session.scalar(
                    select(Organization).where((Organization.id == acting_for) | (Organization.slug == acting_for))
                )
                if org is None:
                    raise NotFound(f"No organization '{acting_for}'.", param="organizationId")
                rows = [(None, org)]
        if not rows:
            if acting_for:
                raise PermissionDenied("You are not a member of this organization.", code="not_a_member")
            raise PermissionDenied("You belong to no organization yet.", code="no_organization")
        if len(rows) > 1:
            raise InvalidRequest(
                f"You belong to several organizations: name one with the '{ORG_HEADER}' header.",
                code="organization_required",
            )
        membership, org = rows[0]
        _require_active(org)
        role = membership.role if membership is not None else SUPER_ADMIN
        return _org_principal(
            org,
            user_id=user.id,
            is_platform_admin=user.is_super_admin,
            role=SUPER_ADMIN if user.is_super_admin else role,
            permissions=permissions_for(role, super_admin=user.is_super_admin),
            via="user",
        )

    # -- organization codes --------------------------------------------------------------

    async def _from_code(self, code: str, user_hint: str | None, acting_for: str | None) -> Principal:
        code = code.strip().upper()
        if not self._code_limiter.hit(self._code_limit, "org-code", code):
            reset = self._code_limiter.get_window_stats(self._code_limit, "org-code", code).reset_time
            retry = max(1, math.ceil(reset - time.time()))
            raise BrokerError(
                f"Too many requests with this organization code (limit {self._code_limit}); retry in {retry} s.",
                status_code=429,
                error_type="rate_limit_exceeded",
                code="code_rate_limited",
                headers={"Retry-After": str(retry)},
            )
        cache_key = (code, user_hint or "")
        cached = self._codes.get(cache_key)
        if cached is None or cached.expires_at < time.monotonic():
            principal, code_expires = await self._load_code_principal(code, user_hint)
            cached = _Cached(principal, time.monotonic() + self._cache_seconds, code_expires)
            self._codes[cache_key] = cached
        if cached.key_expires_at is not None and cached.key_expires_at <= time.time():
            raise AuthenticationError("This organization code has expired; an OWNER or ADMIN can rotate it.", code="expired_organization_code")
        principal = cached.principal
        if acting_for and acting_for not in (principal.organization_id, principal.organization_slug):
            raise PermissionDenied("This organization code belongs to another organization.", code="organization_mismatch")
        return principal

    async def _load_code_principal(self, code: str, user_hint: str | None) -> tuple[Principal, float | None]:
        """The code's principal, and when the code expires (epoch seconds; None: never)."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(OrganizationCode, Organization)
                    .join(Organization, Organization.id == OrganizationCode.organization_id)
                    .where(OrganizationCode.code == code)
                )
            ).first()
            if row is None or row[0].revoked_at is not None:
                raise AuthenticationError("Unknown or revoked organization code.", code="invalid_organization_code")
            code_expires = codes.aware(row[0].expires_at)
            if code_expires is not None and code_expires <= utcnow():
                raise AuthenticationError("This organization code has expired; an OWNER or ADMIN can rotate it.", code="expired_organization_code")
            org = row[1]
            if not org.allow_code_auth:
                raise PermissionDenied(
                    "This organization does not accept organization-code authentication; use an API key.",
                    code="code_auth_disabled",
                )
            _require_active(org)
            role = None
            permissions = CODE_PERMISSIONS
            if user_hint:
                membership = await session.scalar(
                    select(Membership).where(Membership.organization_id == org.id, Membership.user_id == user_hint)
                )
                if membership is None:
                    raise PermissionDenied("x-user-id is not a member of this organization.", code="not_a_member")
                role = membership.role
                permissions = CODE_PERMISSIONS & permissions_for(role)
        principal = _org_principal(
            org,
            user_id=user_hint,
            role=role,
            permissions=permissions,
            via="code",
        )
        return principal, code_expires.timestamp() if code_expires else None

    def forget(self) -> None:
        """Drop every cached lookup (after a revocation or an organization change here)."""
        self._keys.clear()
        self._key_loads.forget()
        self._orgs.clear()
        self._codes.clear()


def _org_principal(org: Organization, **fields: Any) -> Principal:
    """A Principal for `org`; `fields` say who acts and with which rights."""
    return Principal(
        organization_id=org.id, organization_slug=org.slug, plan=org.plan, margin_bps=org.margin_bps,
        timezone=org.timezone, **fields,
    )


def _require_active(org: Organization) -> None:
    # Statuses are stored lowercase: trial | active | suspended | cancelled.
    if org.status not in ACTIVE_STATUSES:
        raise PermissionDenied(f"The organization is {org.status}.", code="organization_inactive")
