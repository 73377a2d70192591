"""Lead signals from one message, through the gateway with structured output (json_schema)."""

from __future__ import annotations

import json
from typing import Any

from aibroker.messaging.leads import SIGNALS

SCHEMA_NAME = "lead_signals"
CLASSIFIER_PROMPT = (
    "You classify one customer message for a sales team. Return the signals it shows, from: "
    + ", ".join(f"{name} ({points:+d})" for name, points in SIGNALS.items())
    + ". interested: wants the product or information; urgent: needs it soon; budget_mentioned: talks about "
    "money or budget; decision_maker: decides the purchase; comparing: weighs alternatives; not_interested: "
    "declines; spam: unrelated or abusive. Return an empty list when none applies."
)
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": SCHEMA_NAME,
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "signals": {"type": "array", "items": {"type": "string", "enum": list(SIGNALS)}},
                "reason": {"type": "string"},
            },
            "required": ["signals", "reason"],
            "additionalProperties": False,
        },
    },
}


def request_body(model: str, text: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "system", "content": CLASSIFIER_PROMPT}, {"role": "user", "content": text}],
        "temperature": 0,
        "max_tokens": 200,
        "response_format": RESPONSE_FORMAT,
    }


def parse_signals(answer_body: dict[str, Any]) -> tuple[list[str], str]:
    """Signals and reason from the model's JSON (unknown names dropped; bad JSON: none)."""
    try:
        content = answer_body["choices"][0]["message"]["content"] or ""
        data = json.loads(content)
    except (KeyError, IndexError, TypeError, ValueError):
        return [], "the classifier's answer was not valid JSON"
    signals = [s for s in data.get("signals") or [] if s in SIGNALS] if isinstance(data, dict) else []
    return signals, str(data.get("reason") or "") if isinstance(data, dict) else ""
