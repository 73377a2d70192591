"""Who may name a routing profile or group (issue 18, item 3).

A routing profile or group can lift a plan's limits (seed 003's `admin` profile has none),
so a caller never declares its own: a tenant API key runs with the profile the platform
gave it (`api_keys.profile`, else `default`), a signed-in user with the profile the platform
maps their role to (`AIBROKER_ROLE_PROFILES`, else `default`). The `x-aibroker-profile` / `x-aibroker-group`
headers and body `profile` / `group` are honoured only from the platform (its service key
acting for an organization, or a SUPER_ADMIN), or from a key the platform allowed those
values (`allowed_profiles` / `allowed_groups`). Anything else: 403 `profile_not_allowed`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aibroker.errors import BrokerError
from aibroker.tenancy.auth import Principal

DEFAULT_PROFILE = "default"  # routing.snapshot's catch-all profile


class ProfileNotAllowed(BrokerError):
    status_code = 403
    error_type = "profile_not_allowed"


def own_profile(principal: Principal, role_profiles: Mapping[str, str]) -> str | None:
    """The profile a request runs with when it names none (None: `default`)."""
    if principal.profile:
        return principal.profile
    if principal.via == "user" and principal.role:
        return role_profiles.get(principal.role)
    return None


def _refuse(what: str, value: str, allowed: Iterable[str]) -> ProfileNotAllowed:
    names = sorted(allowed)
    granted = f"this credential may name: {', '.join(names)}" if names else f"this credential may not name a {what}"
    return ProfileNotAllowed(
        f"The routing {what} '{value}' is not allowed for this credential ({granted}). A {what} is set by the "
        f"platform on the API key, or sent by the platform's service key.",
        param=what, code="profile_not_allowed", extra={what: value},
    )


def authorize(
    principal: Principal, profile: str | None, group: str | None, role_profiles: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The (profile, group) a request runs with, or ProfileNotAllowed when it names one its
    credential may not use."""
    if principal.is_platform_admin:
        return profile, group
    mine = own_profile(principal, role_profiles)
    if profile is not None and profile != (mine or DEFAULT_PROFILE) and profile not in principal.allowed_profiles:
        raise _refuse("profile", profile, {mine or DEFAULT_PROFILE, *principal.allowed_profiles})
    if group is not None and group not in principal.allowed_groups:
        raise _refuse("group", group, principal.allowed_groups)
    return profile or mine, group


def check_grant(
    principal: Principal, role_profiles: Mapping[str, str], *, profiles: Iterable[str | None] = (), groups: Iterable[str] = ()
) -> None:
    """A caller gives an API key only the routing authority it has itself (the platform: any)."""
    if principal.is_platform_admin:
        return
    mine = {own_profile(principal, role_profiles) or DEFAULT_PROFILE, *principal.allowed_profiles}
    for profile in profiles:
        if (profile or DEFAULT_PROFILE) not in mine:
            raise _refuse("profile", profile or DEFAULT_PROFILE, mine)
    for group in groups:
        if group not in principal.allowed_groups:
            raise _refuse("group", group, principal.allowed_groups)
