"""Deterministic structured output for the mock provider (response_format json_schema).

The schema named "lead_signals" (the auto-responder's lead scoring) gets signals derived from
keywords in the last user message (English / Spanish / Portuguese), so tests and demos score
leads predictably without a real model. Any other schema gets an empty JSON object.
"""

from __future__ import annotations

import json
from typing import Any

KEYWORDS: dict[str, tuple[str, ...]] = {
    "interested": ("interest", "interesa", "info", "precio", "price", "preço", "quiero", "quero", "want", "buy", "comprar", "cotiza", "quote"),
    "urgent": ("urgent", "urgente", "asap", "today", "hoy", "hoje", "now", "ahora", "agora"),
    "budget_mentioned": ("budget", "presupuesto", "orçamento", "$", "usd", "dollars", "pesos", "reais"),
    "decision_maker": ("owner", "dueño", "dono", "ceo", "director", "i decide", "yo decido", "gerente", "manager"),
    "comparing": ("compar", "competitor", "competencia", "alternativ", " vs ", "otra opción", "other option"),
    "not_interested": ("not interested", "no me interesa", "não tenho interesse", "no gracias", "no thanks", "unsubscribe", "stop"),
    "spam": ("http://", "https://", "free money", "click here", "bitcoin", "crypto", "casino", "lottery"),
}


def lead_signals(text: str) -> list[str]:
    lowered = f" {text.lower()} "
    found = [name for name, words in KEYWORDS.items() if any(w in lowered for w in words)]
    if "not_interested" in found and "interested" in found:
        found.remove("interested")  # "no me interesa" contains "interesa"
    return found


def structured_reply(body: dict[str, Any]) -> str | None:
    """The JSON text for a json_schema request, or None when the request wants free text."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") != "json_schema":
        return None
    name = (response_format.get("json_schema") or {}).get("name")
    if name != "lead_signals":
        return "{}"
    messages = body.get("messages") or []
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last_user.get("content")
    text = content if isinstance(content, str) else ""
    signals = lead_signals(text)
    return json.dumps({"signals": signals, "reason": "keywords: " + (", ".join(signals) or "none")})
