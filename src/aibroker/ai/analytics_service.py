"""GET /api/ai/analytics: totals, a series, top users and the month's projection, from the
rollup cubes (ai/rollup_writer.py keeps them current with every usage record)."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai.analytics_measures import Measures
from aibroker.ai.analytics_repository import MONEY, AnalyticsRepository, Scope
from aibroker.ai.rollup_shape import zone
from aibroker.kit.clock import utcnow

GROUPS = ("day", "hour", "model", "provider", "feature", "user", "key")
TIME_GROUPS = ("day", "hour")
TOP_USERS = 10
TOP_ORGANIZATIONS = 100


class AnalyticsService:
    def __init__(self, session: AsyncSession) -> None:
        self.repo = AnalyticsRepository(session)

    async def report(
        self, *, organization_id: str | None, tz_name: str, start: dt.datetime, end: dt.datetime, group_by: str,
        limit: int, platform: bool,
    ) -> dict[str, Any]:
        tz = zone(tz_name)
        scope = Scope(organization_id, start, end, tz if organization_id is not None else dt.UTC)
        series_rows = await self.repo.grouped(
            scope, [group_by], order_by_cost=group_by not in TIME_GROUPS,
            limit=None if group_by in TIME_GROUPS else limit,
        )
        totals = Measures()
        # A time series covers the whole scope: its sum is the totals (one scan fewer).
        whole = series_rows if group_by in TIME_GROUPS else await self.repo.grouped(scope, [])
        for _, measures in whole:
            totals.add(measures)
        rendered = totals.render()
        rendered["top_users"] = await self._top_users(scope)
        result: dict[str, Any] = {
            "organization_id": organization_id,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "group_by": group_by,
            "time_zone": tz_name if organization_id is not None else "UTC",
            "totals": rendered,
            "series": [{"key": _key(group_by, key[0], tz), **m.render()} for key, m in series_rows],
            "projection": await self._projection(organization_id, tz if organization_id is not None else dt.UTC),
        }
        if platform:
            result["platform"] = await self._platform(scope)
        return result

    async def _top_users(self, scope: Scope) -> list[dict[str, Any]]:
        """An organization's end users by cost. User ids are each organization's own: across all
        organizations they name no one, so the platform view lists organizations instead."""
        if scope.organization_id is None:
            return []
        rows = await self.repo.grouped(scope, ["user"], order_by_cost=True, limit=TOP_USERS + 1, only=MONEY)
        top = [{"user_id": key[0], "requests": m.values["requests"], "cost_micros": m.values["billed_cost_micros"]}
               for key, m in rows if key[0] != ""]  # "": requests made without a user id
        return top[:TOP_USERS]

    async def _projection(self, organization_id: str | None, tz: dt.tzinfo) -> dict[str, Any]:
        """The current month (in the organization's zone) at its run rate so far."""
        now = utcnow().astimezone(tz)
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        days = calendar.monthrange(now.year, now.month)[1]
        month_end = (month_start + dt.timedelta(days=days + 1)).replace(day=1)
        elapsed = max(1, int((now - month_start).total_seconds()))
        length = int((month_end - month_start).total_seconds())
        so_far = await self.repo.billed_since(
            organization_id, month_start.date().isoformat(), now.date().isoformat(),
            month_start.astimezone(dt.UTC) - dt.timedelta(hours=15),  # the earliest zone's month start
        )
        return {
            "month": f"{now.year:04d}-{now.month:02d}",
            "month_to_date_cost_micros": so_far,
            "projected_cost_micros": -(-so_far * length // elapsed),
            "elapsed_fraction": round(elapsed / length, 4),
            "method": "linear: the month so far at its average rate per second",
        }

    async def _platform(self, scope: Scope) -> dict[str, Any]:
        """Revenue (billed), provider cost and margin per organization and per provider."""
        count: list[int] = []
        by_org = await self.repo.grouped(scope, ["organization"], order_by_cost=True, limit=TOP_ORGANIZATIONS, only=MONEY,
                                         count=count)
        by_provider = await self.repo.grouped(scope, ["provider"], order_by_cost=True, only=MONEY)
        return {
            "organizations_count": count[0],
            "organizations": [{"organization_id": key[0], **_money(m)} for key, m in by_org],
            "providers": [{"provider": key[0], **_money(m)} for key, m in by_provider],
        }


def _money(m: Measures) -> dict[str, int]:
    v = m.values
    return {"requests": v["requests"], "revenue_micros": v["billed_cost_micros"],
            "provider_cost_micros": v["provider_cost_micros"],
            "margin_micros": v["billed_cost_micros"] - v["provider_cost_micros"]}


def _key(group_by: str, value: Any, tz: dt.tzinfo) -> Any:
    if group_by == "hour":
        if isinstance(value, str):  # SQLite hands back text when the value went through SUM/GROUP BY
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(tz).isoformat()
    if group_by in ("user", "key", "feature"):
        return value or None
    return value
