"""The `template` field of the AI routes: `{"id", "version"?, "variables"}` rendered into one
message of the template's role, before the request is validated and routed.

    role user    stands in for `messages` (chat), `input` (responses) or `prompt` (broker)
                 when those are absent; when present, the rendered text goes first, before
                 the given user content (an instruction such as "Summarize in {{ lang }}:")
    role system  goes before the given messages (chat, responses) or the `systemPrompt` (broker)

A request without the field costs nothing here (one dict lookup): the hot path stays as it is.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from aibroker.ai import templates_service
from aibroker.errors import InvalidRequest
from aibroker.gateway.http import authenticate, services
from aibroker.tenancy.auth import Principal

TARGETS = ("chat", "responses", "broker")


def _field(raw: Any) -> tuple[str, int | None, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"] or len(raw["id"]) > 60:
        raise InvalidRequest('\'template\' must be {"id": "tpl_...", "version"?: n, "variables"?: {...}}.',
                             param="template", code="invalid_template_field")
    unknown = set(raw) - {"id", "version", "variables"}
    if unknown:
        raise InvalidRequest(f"Unknown field(s) in 'template': {', '.join(sorted(unknown))}.", param="template",
                             code="invalid_template_field")
    version = raw.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**31):
        raise InvalidRequest("'template.version' must be a positive integer.", param="template.version", code="invalid_template_field")
    return raw["id"], version, raw.get("variables")


async def apply_template(request: Request, body: dict[str, Any], target: str, principal: Principal | None = None) -> dict[str, Any]:
    """`body` with its `template` rendered in (`target`: chat | responses | broker); the
    template's use is counted. Unchanged when the body has no `template`."""
    if "template" not in body:
        return body
    raw = body.pop("template")
    if raw is None:
        return body
    template_id, version, variables = _field(raw)
    if principal is None:
        acting_for = body.get("organizationId") if isinstance(body.get("organizationId"), str) else None
        principal = await authenticate(request, acting_for=acting_for)
    async with services(request).db.sessions() as session:
        rendered = await templates_service.render_template(session, principal, template_id, version, variables)
        await templates_service.count_use(session, template_id)
        await session.commit()
    return _rewrite(body, target, rendered["role"], rendered["content"])


def _rewrite(body: dict[str, Any], target: str, role: str, text: str) -> dict[str, Any]:
    if target == "broker":
        key = "systemPrompt" if role == "system" else "prompt"
        given = body.get(key)
        body[key] = f"{text}\n\n{given}" if isinstance(given, str) and given else text
        return body
    key = "messages" if target == "chat" else "input"
    given = body.get(key)
    message = {"role": role, "content": text}
    if given is None:
        body[key] = [message]
    elif isinstance(given, str):  # responses: a plain text input is one user message
        body[key] = [message, {"role": "user", "content": given}]
    elif isinstance(given, list):
        at = 0
        if role == "user":  # after any leading system / developer messages
            while at < len(given) and isinstance(given[at], dict) and given[at].get("role") in ("system", "developer"):
                at += 1
        body[key] = [*given[:at], message, *given[at:]]
    return body
