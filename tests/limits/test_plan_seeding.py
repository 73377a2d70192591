"""Default plans are seeded by every process at start; several processes start at once
(`aibroker serve --workers N`, a fleet behind a load balancer), so seeding must tolerate
another process inserting the same plans between its read and its write."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from aibroker.db import Database
from aibroker.limits.defaults import DEFAULT_PLANS
from aibroker.limits.plans import ensure_default_plans
from aibroker.models import PlanRow


async def test_a_plan_inserted_by_another_process_meanwhile_is_skipped(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.sessions() as session:
            await session.execute(delete(PlanRow))
            await session.commit()
        async with db.sessions() as late, db.sessions() as early:
            read_plans = late.scalars

            async def read_then_another_process_seeds(*args: Any, **kwargs: Any) -> Any:
                seen = await read_plans(*args, **kwargs)
                await ensure_default_plans(early)  # the other process wins the race...
                await early.commit()
                return seen

            late.scalars = read_then_another_process_seeds  # type: ignore[method-assign]
            inserted = await ensure_default_plans(late)  # ...and this one saw no plans
            await late.commit()
        assert inserted == 0
        async with db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(PlanRow)) == len(DEFAULT_PLANS)
            await session.execute(delete(PlanRow).where(PlanRow.slug == "free"))
            await session.commit()
            assert await ensure_default_plans(session) == 1  # a missing one is still restored
            await session.commit()
    finally:
        await db.dispose()
