"""Roles and the permissions they grant (seed 000: USE_AI_BROKER; owner, agent, distributor).

A permission is a plain string; every endpoint declares the one it needs
(`aibroker.deps.require`). Roles are fixed sets, so a check is a set lookup."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    USE_AI_BROKER = "USE_AI_BROKER"
    VIEW_USAGE = "VIEW_USAGE"
    MANAGE_KEYS = "MANAGE_KEYS"
    MANAGE_BILLING = "MANAGE_BILLING"
    MANAGE_MEMBERS = "MANAGE_MEMBERS"
    MANAGE_CHANNELS = "MANAGE_CHANNELS"
    MANAGE_ORGANIZATION = "MANAGE_ORGANIZATION"


class Role(StrEnum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    AGENT = "AGENT"
    DISTRIBUTOR = "DISTRIBUTOR"
    MEMBER = "MEMBER"


SUPER_ADMIN = "SUPER_ADMIN"
ALL_PERMISSIONS: frozenset[str] = frozenset(Permission)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: ALL_PERMISSIONS,
    Role.ADMIN: ALL_PERMISSIONS - {Permission.MANAGE_ORGANIZATION},
    # Agents answer conversations on the channels and use the AI; they see usage.
    Role.AGENT: frozenset({Permission.USE_AI_BROKER, Permission.VIEW_USAGE, Permission.MANAGE_CHANNELS}),
    # Distributors resell: they use the AI, see usage and pay (recharges, plans).
    Role.DISTRIBUTOR: frozenset({Permission.USE_AI_BROKER, Permission.VIEW_USAGE, Permission.MANAGE_BILLING}),
    Role.MEMBER: frozenset({Permission.USE_AI_BROKER}),
}

# An API key is the machine credential a platform integrates with: it calls the AI, reads
# usage, manages keys and connects channels. Paying, members and the organization itself
# need a person (a user's token with the right role).
API_KEY_PERMISSIONS: frozenset[str] = frozenset(
    {Permission.USE_AI_BROKER, Permission.VIEW_USAGE, Permission.MANAGE_KEYS, Permission.MANAGE_CHANNELS}
)
# `x-organization-code` header: the AI and usage only; never an administrative operation.
CODE_PERMISSIONS: frozenset[str] = frozenset({Permission.USE_AI_BROKER, Permission.VIEW_USAGE})

# Who may read, rotate or revoke the organization code (a credential that can create the
# first owner): OWNER and ADMIN, and the platform (SUPER_ADMIN). Not a DISTRIBUTOR, though it pays.
CODE_MANAGER_ROLES: frozenset[str] = frozenset({Role.OWNER, Role.ADMIN, SUPER_ADMIN})

# Roles an inviter may hand out: nobody can invite an OWNER; only an OWNER invites an ADMIN.
INVITABLE_ROLES = (Role.ADMIN, Role.AGENT, Role.DISTRIBUTOR, Role.MEMBER)


def permissions_for(role: str | None, *, super_admin: bool = False) -> frozenset[str]:
    if super_admin:
        return ALL_PERMISSIONS
    return ROLE_PERMISSIONS.get(role or "", frozenset())


# Seed 000 names the roles in Spanish: accepted wherever a role is given, answered canonically.
ROLE_ALIASES: dict[str, Role] = {"PROPIETARIO": Role.OWNER, "AGENTE": Role.AGENT, "DISTRIBUIDOR": Role.DISTRIBUTOR,
                                 "ADMINISTRADOR": Role.ADMIN, "MIEMBRO": Role.MEMBER}
# Who outranks whom: nobody grants a role above their own (AGENT and DISTRIBUTOR are peers).
ROLE_RANK: dict[str, int] = {Role.OWNER: 4, Role.ADMIN: 3, Role.AGENT: 2, Role.DISTRIBUTOR: 2, Role.MEMBER: 1, SUPER_ADMIN: 5}


def parse_role(value: str) -> Role:
    name = value.strip().upper() if isinstance(value, str) else ""
    if name in ROLE_ALIASES:
        return ROLE_ALIASES[name]
    try:
        return Role(name)
    except ValueError:
        from aibroker.errors import InvalidRequest

        raise InvalidRequest(
            f"unknown role '{value}'; one of {', '.join(r.value for r in Role)} "
            f"(or {', '.join(ROLE_ALIASES)})", param="role", code="unknown_role",
        ) from None
