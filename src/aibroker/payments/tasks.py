"""Payment jobs: the delayed suspension check of a lapsed subscription (suspension.py)."""

from __future__ import annotations

from typing import Any

from aibroker.jobs import JobContext, register
from aibroker.payments import suspension


@register(suspension.JOB)
async def enforce_subscription(job: JobContext) -> dict[str, Any]:
    done = await suspension.enforce(job.session, job.services.settings.payments, job.payload.get("organization_id"))
    auth = getattr(job.services, "auth", None)
    if done == "suspended" and auth is not None:
        auth.forget()  # this process at once; others within AIBROKER_AUTH_CACHE_SECONDS
    return {"result": done}
