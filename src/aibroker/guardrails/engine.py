"""The guardrails applied to a chat call: PII redaction of prompts and answers, and moderation
of prompts and answers by a rule list and / or a moderation model, with the organization's
action (block: 400 `content_flagged`; redact; flag only). What they decided is written on
the request's usage record (`guardrail`) and answered in `x-aibroker-guardrail`.

The moderation model is called through the gateway as the tenant (routed, recorded, free:
cost 0), but it is not admitted against the tenant's rate limits: a guarded request should
not count three times. A moderation call that fails lets the request through, marked
`unmoderated:<input|output>` (availability first; the mark says it was not checked).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aibroker.errors import BrokerError
from aibroker.gateway.context import CallContext
from aibroker.guardrails.policy import OPEN, GuardrailBook, Policy
from aibroker.limits.input_rules import Redactor, _text_slots

if TYPE_CHECKING:
    from aibroker.gateway.service import Gateway

log = logging.getLogger(__name__)

HEADER = "x-aibroker-guardrail"
REMOVED = "[content removed by moderation]"
RULE_MASK = "[REDACTED]"
MAX_VERDICT = 120


class ContentFlagged(BrokerError):
    status_code = 400
    error_type = "invalid_request_error"


def note(ctx: CallContext, text: str) -> None:
    """Add one decision to the request's verdict (usage record `guardrail`)."""
    ctx.guardrail = (text if not ctx.guardrail else f"{ctx.guardrail},{text}")[:MAX_VERDICT]


@dataclass(slots=True)
class Verdict:
    """One text's moderation: flagged or not, the categories, and whether a rule matched."""

    flagged: bool = False
    categories: list[str] = field(default_factory=list)
    by_model: bool = False


def output_slots(body: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(message, "content") of every text an answer carries."""
    slots = []
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            slots.append((message, "content"))
    return slots


class Guardrails:
    def __init__(self, book: GuardrailBook, *, phone_region: str, output_pii_everywhere: bool = False) -> None:
        self.book = book
        self.redactor: Callable[[str], str] = Redactor(phone_region)
        self.output_pii_everywhere = output_pii_everywhere  # AIBROKER_PII_REDACTION_OUTPUT: every organization

    async def policy(self, ctx: CallContext) -> Policy:
        if ctx.internal:
            return OPEN
        policy = await self.book.policy(ctx.principal.organization_id)
        if self.output_pii_everywhere and not policy.redact_output_pii:
            from dataclasses import replace

            policy = replace(policy, redact_output_pii=True)
        return policy

    # -- input --------------------------------------------------------------------------

    async def screen_input(self, gateway: Gateway, ctx: CallContext, body: dict[str, Any], policy: Policy) -> None:
        """Redact / moderate the prompt in place; raise ContentFlagged to block it."""
        slots = list(_text_slots(body, "chat"))
        if policy.redact_input_pii and self._redact_pii(slots):
            note(ctx, "redacted:input:pii")
        if policy.moderate_input and slots:
            error = await self._moderate(gateway, ctx, policy, slots, "input")
            if error is not None:
                raise error

    # -- output -------------------------------------------------------------------------

    async def screen_output(self, gateway: Gateway, ctx: CallContext, body: dict[str, Any], policy: Policy) -> ContentFlagged | None:
        """Redact / moderate an answer in place; the block to raise (after billing), if any."""
        slots = output_slots(body)
        if policy.redact_output_pii and self._redact_pii(slots):
            note(ctx, "redacted:output:pii")
        if policy.moderate_output and slots:
            return await self._moderate(gateway, ctx, policy, slots, "output")
        return None

    # -- pieces -------------------------------------------------------------------------

    def _redact_pii(self, slots: list[tuple[Any, Any]]) -> bool:
        changed = False
        for container, index in slots:
            before = container[index]
            after = self.redactor(before)
            if after != before:
                container[index], changed = after, True
        return changed

    async def _moderate(
        self, gateway: Gateway, ctx: CallContext, policy: Policy, slots: list[tuple[Any, Any]], stage: str
    ) -> ContentFlagged | None:
        texts = [container[index] for container, index in slots]
        verdicts = await self.verdicts(gateway, ctx, policy, texts, stage)
        flagged = [(slot, v) for slot, v in zip(slots, verdicts, strict=True) if v.flagged]
        if not flagged:
            return None
        categories = sorted({c for _, v in flagged for c in v.categories})
        what = "+".join(categories) or "rule"
        if policy.action == "block":
            note(ctx, f"blocked:{stage}:{what}")
            where = "request" if stage == "input" else "answer"
            return ContentFlagged(
                f"The {where} was flagged by this organization's content guardrails ({', '.join(categories)}).",
                code="content_flagged", extra={"stage": stage, "categories": categories},
            )
        if policy.action == "redact":
            for (container, index), verdict in flagged:
                container[index] = REMOVED if verdict.by_model else self.mask_rules(policy, container[index])
            note(ctx, f"redacted:{stage}:{what}")
        else:
            note(ctx, f"flagged:{stage}:{what}")
        return None

    @staticmethod
    def mask_rules(policy: Policy, text: str) -> str:
        for pattern in policy.rules:
            text = pattern.sub(RULE_MASK, text)
        return text

    async def verdicts(self, gateway: Gateway, ctx: CallContext, policy: Policy, texts: list[str], stage: str) -> list[Verdict]:
        verdicts = [Verdict() for _ in texts]
        for verdict, text in zip(verdicts, texts, strict=True):
            if any(p.search(text) for p in policy.rules):
                verdict.flagged, verdict.categories = True, ["rule"]
        if policy.moderation_model and any(texts):
            try:
                results = await self._ask_model(gateway, ctx, policy.moderation_model, texts)
            except Exception as exc:  # noqa: BLE001 - fail open, marked: see the module docstring
                log.warning("moderation failed; the %s goes unmoderated", stage, extra={"fields": {"error": type(exc).__name__}})
                note(ctx, f"unmoderated:{stage}")
                return verdicts
            for verdict, result in zip(verdicts, results, strict=False):
                if isinstance(result, dict) and result.get("flagged"):
                    names = [name for name, hit in (result.get("categories") or {}).items() if hit]
                    verdict.flagged, verdict.by_model = True, True
                    verdict.categories = sorted({*verdict.categories, *names}) or ["flagged"]
        return verdicts

    async def _ask_model(self, gateway: Gateway, ctx: CallContext, model: str, texts: list[str]) -> list[Any]:
        from aibroker.gateway.media import MediaGateway

        sub = CallContext(request_id=ctx.request_id, principal=ctx.principal, endpoint="moderations", feature=ctx.feature,
                          user_id=ctx.user_id, user_name=ctx.user_name, internal=True)
        answer = await MediaGateway(gateway).moderate(sub, {"model": model, "input": texts})
        return list(answer.body.get("results") or [])
