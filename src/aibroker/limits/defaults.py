"""The plans every install starts with (seed 002's account limits, seed 001's AI rate limits).

Used by the 0006 data migration and re-ensured at startup (missing slugs only: an
operator's edits to a default plan are kept).
"""

from __future__ import annotations

from typing import Any

GB = 1024**3
UNLIMITED = "unlimited"

# Per-user limits (user_requests_per_minute / _per_hour, user_tokens_per_minute) are left
# unset: an organization's end users share its limits unless a plan (or an operator's edit)
# says otherwise.
DEFAULT_PLANS: list[dict[str, Any]] = [
    {
        "slug": "free", "name": "FREE", "price_micros": 0,
        "max_users": 1, "max_recordings": 10, "max_storage_bytes": 1 * GB,
        "requests_per_minute": None, "requests_per_hour": 10, "tokens_per_minute": 20_000,
        "monthly_token_quota": 200_000, "max_prompt_chars": 16_000, "max_messages": 50,
    },
    {
        "slug": "starter", "name": "STARTER", "price_micros": 29_000_000,
        "max_users": 5, "max_recordings": 100, "max_storage_bytes": 10 * GB,
        "requests_per_minute": 30, "requests_per_hour": 100, "tokens_per_minute": 100_000,
        "monthly_token_quota": 2_000_000, "max_prompt_chars": 64_000, "max_messages": 200,
    },
    {
        "slug": "professional", "name": "PROFESSIONAL", "price_micros": 99_000_000,
        "max_users": 20, "max_recordings": 500, "max_storage_bytes": 50 * GB,
        "requests_per_minute": 120, "requests_per_hour": 1000, "tokens_per_minute": 400_000,
        "monthly_token_quota": 20_000_000, "max_prompt_chars": 256_000, "max_messages": 500,
    },
    {
        "slug": "enterprise", "name": "ENTERPRISE", "price_micros": 299_000_000,
        "max_users": 100, "max_recordings": 2000, "max_storage_bytes": 200 * GB,
        "requests_per_minute": 600, "requests_per_hour": 10_000, "tokens_per_minute": 2_000_000,
        "monthly_token_quota": 200_000_000, "max_prompt_chars": 1_000_000, "max_messages": 2000,
    },
    # For a platform's own internal modules: no rate limits, quotas or input limits.
    {"slug": UNLIMITED, "name": "UNLIMITED", "price_micros": 0},
]

LIMIT_FIELDS = (
    "max_users", "max_recordings", "max_storage_bytes",
    "requests_per_minute", "requests_per_hour", "tokens_per_minute",
    "user_requests_per_minute", "user_requests_per_hour", "user_tokens_per_minute",
    "monthly_token_quota", "daily_token_quota", "monthly_request_quota", "daily_request_quota",
    "margin_bps", "max_prompt_chars", "max_messages", "batch_discount_bps",
)


def full_row(plan: dict[str, Any]) -> dict[str, Any]:
    """A default plan with every optional column present (NULL when not given)."""
    row = {name: plan.get(name) for name in LIMIT_FIELDS}
    row.update(slug=plan["slug"], name=plan["name"], price_micros=plan.get("price_micros", 0), allowed_models=plan.get("allowed_models"))
    return row
