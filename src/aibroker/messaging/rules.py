"""Each channel's rules for what may be sent, checked before any send.

WhatsApp   free-form inside 24 h of the customer's last message; outside it only an approved
           template (the connection's `reengagement_template`), else nothing is sent.
Messenger/ RESPONSE inside 24 h; a human agent may answer up to 7 days with the HUMAN_AGENT tag;
Instagram  the bot never uses the tag; anything else is blocked.
TikTok     inside 48 h of the customer's last message and at most 10 business messages per
           window (until the customer writes again).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

WINDOW = {"whatsapp": dt.timedelta(hours=24), "facebook": dt.timedelta(hours=24),
          "instagram": dt.timedelta(hours=24), "tiktok": dt.timedelta(hours=48)}
HUMAN_AGENT_WINDOW = dt.timedelta(days=7)
TIKTOK_MESSAGES_PER_WINDOW = 10
TEXT_LIMITS = {"whatsapp": 4096, "facebook": 2000, "instagram": 1000, "tiktok": 6000}


@dataclass(frozen=True, slots=True)
class SendPlan:
    allowed: bool
    mode: str = "text"  # text | template | human_agent
    reason: str = ""
    template: dict[str, Any] | None = None


def plan_send(
    channel: str, *, author: str, now: dt.datetime, last_inbound_at: dt.datetime | None,
    sent_since_inbound: int, options: dict[str, Any],
) -> SendPlan:
    age = now - last_inbound_at if last_inbound_at else None
    inside = age is not None and age < WINDOW[channel]
    if channel == "whatsapp":
        if inside:
            return SendPlan(True)
        template = options.get("reengagement_template")
        if template and template.get("name"):
            return SendPlan(True, "template", "outside the 24-hour window: approved template", template)
        return SendPlan(False, reason="outside WhatsApp's 24-hour window and no approved template is configured")
    if channel in ("facebook", "instagram"):
        if inside:
            return SendPlan(True)
        if author == "human" and age is not None and age < HUMAN_AGENT_WINDOW:
            return SendPlan(True, "human_agent", "human agent reply between 24 hours and 7 days (HUMAN_AGENT tag)")
        return SendPlan(False, reason="outside the 24-hour window (only human agents may reply, with HUMAN_AGENT, up to 7 days)")
    if not inside:
        return SendPlan(False, reason="outside TikTok's 48-hour reply window")
    if sent_since_inbound >= TIKTOK_MESSAGES_PER_WINDOW:
        return SendPlan(False, reason=f"TikTok allows {TIKTOK_MESSAGES_PER_WINDOW} messages until the customer writes again")
    return SendPlan(True)


def clip(channel: str, text: str) -> str:
    limit = TEXT_LIMITS[channel]
    if channel == "instagram":  # the limit is in UTF-8 bytes
        data = text.encode()
        return text if len(data) <= limit else data[:limit].decode(errors="ignore")
    return text[:limit]
