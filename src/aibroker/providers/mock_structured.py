"""Deterministic structured output for the mock provider (response_format json_schema).

The schema named "lead_signals" (the auto-responder's lead scoring) gets signals derived from
keywords in the last user message (English / Spanish / Portuguese), so tests and demos score
leads predictably without a real model. Any other schema gets a valid instance of itself
(`instance_of`): every required property, the first enum value, nested objects and arrays,
`$ref`s into `$defs` (what the SDKs' `parse` helpers send). Tool calls get their arguments
the same way, from the function's `parameters`.
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

MAX_DEPTH = 8  # a recursive schema ($ref to itself) stops here with the smallest instance
# Sample strings for the formats clients commonly ask for.
FORMATS = {"date-time": "2025-01-01T00:00:00Z", "date": "2025-01-01", "time": "00:00:00", "email": "mock@example.com",
           "uri": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000"}


def lead_signals(text: str) -> list[str]:
    lowered = f" {text.lower()} "
    found = [name for name, words in KEYWORDS.items() if any(w in lowered for w in words)]
    if "not_interested" in found and "interested" in found:
        found.remove("interested")  # "no me interesa" contains "interesa"
    return found


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#"):
        return node
    target: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return target if isinstance(target, dict) else {}


def _string(node: dict[str, Any]) -> str:
    if node.get("format") in FORMATS:
        return FORMATS[node["format"]]
    text = "mock"
    low, high = int(node.get("minLength") or 0), node.get("maxLength")
    text = (text * (low // len(text) + 1))[: max(low, len(text))]
    return text[: int(high)] if isinstance(high, int) else text


def _number(node: dict[str, Any], integer: bool) -> int | float:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    value: int | float = 0 if low is None else low
    if "exclusiveMinimum" in node and value == node["exclusiveMinimum"]:
        value = value + 1
    high = node.get("maximum")
    if high is not None and value > high:
        value = high
    return int(value) if integer else value


def instance_of(schema: Any, root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """The smallest deterministic value that satisfies `schema` (the JSON Schema subset that
    structured outputs use)."""
    if not isinstance(schema, dict):
        return {}
    root = schema if root is None else root
    node = _resolve(schema, root)
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][0]
    for key in ("anyOf", "oneOf"):
        if node.get(key):
            return instance_of(node[key][0], root, depth + 1)
    if node.get("allOf"):
        merged: dict[str, Any] = {}
        for part in node["allOf"]:
            merged.update(_resolve(part, root))
        return instance_of(merged, root, depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in node else "array" if "items" in node else "string"
    if kind == "object":
        if depth >= MAX_DEPTH:
            return {}
        properties = node.get("properties") or {}
        names = node.get("required") or list(properties)  # strict schemas require every property
        return {name: instance_of(properties.get(name, {}), root, depth + 1) for name in names}
    if kind == "array":
        count = int(node.get("minItems") or (1 if depth < MAX_DEPTH else 0))
        if node.get("maxItems") is not None:
            count = min(count, int(node["maxItems"]))
        return [instance_of(node.get("items") or {}, root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number(node, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(node)


def structured_reply(body: dict[str, Any]) -> str | None:
    """The JSON text for a json_schema / json_object request, or None when the request wants free text."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_object":
        return "{}"
    if response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    if spec.get("name") == "recording_analysis":
        return json.dumps(recording_analysis(_last_user_text(body)))
    if spec.get("name") != "lead_signals":
        return json.dumps(instance_of(spec.get("schema") or {}))
    messages = body.get("messages") or []
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last_user.get("content")
    text = content if isinstance(content, str) else ""
    signals = lead_signals(text)
    return json.dumps({"signals": signals, "reason": "keywords: " + (", ".join(signals) or "none")})


def _last_user_text(body: dict[str, Any]) -> str:
    last_user = next((m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {})
    content = last_user.get("content")
    return content if isinstance(content, str) else ""


POSITIVE = ("good", "great", "thanks", "thank you", "happy", "excellent", "gracias", "excelente", "obrigado", "ótimo")
NEGATIVE = ("bad", "problem", "angry", "terrible", "cancel", "complaint", "malo", "problema", "ruim")
ACTION_MARKERS = (" will ", " should ", " must ", " need to ", " vamos a ", " vou ")


def recording_analysis(text: str) -> dict[str, Any]:
    """The recordings worker's analysis, derived from the transcript: the first words as the
    summary, sentiment by keyword, the three most frequent longer words as topics, and the
    sentences that commit to something as action items."""
    words = text.split()
    lowered = f" {text.lower()} "
    positive = any(w in lowered for w in POSITIVE)
    negative = any(w in lowered for w in NEGATIVE)
    sentiment = "mixed" if positive and negative else "positive" if positive else "negative" if negative else "neutral"
    counts: dict[str, int] = {}
    for word in words:
        cleaned = word.strip(".,;:!?\"'()").lower()
        if len(cleaned) > 3:
            counts[cleaned] = counts.get(cleaned, 0) + 1
    topics = [w for w, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:3]]
    sentences = [s.strip() for s in text.replace("\n", " ").split(".") if s.strip()]
    actions = [s + "." for s in sentences if any(m in f" {s.lower()} " for m in ACTION_MARKERS)][:10]
    summary = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
    return {"summary": f"Mock summary ({len(words)} words): {summary}", "sentiment": sentiment, "topics": topics,
            "action_items": actions, "language": "en"}
