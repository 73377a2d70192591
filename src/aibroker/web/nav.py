"""Navigation entries: each page module lists its own in `NAV`; the layout shows the ones the user may open."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NavEntry:
    label: str
    path: str
    permission: str | None = None  # the Permission a tenant user needs to see it (None: any member)
    super_admin: bool = False  # platform pages: SUPER_ADMIN only
    section: str = "Organization"  # "Organization" or "Platform"; the layout groups by it

    def visible_to(self, console_user) -> bool:  # type: ignore[no-untyped-def]
        if self.super_admin:
            return console_user.is_super_admin
        return console_user.organization is not None and console_user.can(self.permission)
