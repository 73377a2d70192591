"""Who owns what in the AI workspace: a user, else the API key, else the credential kind."""

from __future__ import annotations

from aibroker.tenancy.auth import Principal


def owner_of(principal: Principal) -> str:
    """The owner key of a caller's conversations: the signed-in (or code-named) user, else the
    API key (a key without a user is its own owner), else the organization code's anonymous
    caller, else the platform acting for the organization."""
    if principal.user_id:
        return f"user:{principal.user_id}"
    if principal.api_key_id:
        return f"key:{principal.api_key_id}"
    return "code" if principal.via == "code" else "platform"
