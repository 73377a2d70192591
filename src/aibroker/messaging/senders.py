"""Platform send APIs over one pooled HTTP client per event loop, with failures mapped to
retry (network, 429, 5xx, platform rate limits) or give up (bad token, blocked user ...)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from aibroker.jobs import GiveUp, RetryLater
from aibroker.messaging.channels import OpenConnection
from aibroker.messaging.rules import SendPlan

_clients: dict[int, httpx.AsyncClient] = {}
# Meta codes that mean "slow down" (rate limits / throughput), not "this will never work".
META_RETRY_CODES = {1, 2, 4, 17, 32, 341, 613, 80007, 130429, 131048, 131056}
TIKTOK_RETRY_CODES = {40064, 50000, 50002}


def client(timeout: float) -> httpx.AsyncClient:
    loop_id = id(asyncio.get_running_loop())
    http = _clients.get(loop_id)
    if http is None or http.is_closed:
        http = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        _clients[loop_id] = http
    return http


async def aclose() -> None:
    http = _clients.pop(id(asyncio.get_running_loop()), None)
    if http is not None:
        await http.aclose()


async def _post(url: str, *, timeout: float, **kw: Any) -> httpx.Response:
    try:
        return await client(timeout).post(url, **kw)
    except httpx.TransportError as exc:  # timeouts and connection failures: transient
        raise RetryLater(f"network error calling {url.split('?')[0]}: {type(exc).__name__}") from exc


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _meta_result(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code < 400:
        return body
    error = body.get("error") or {} if isinstance(body, dict) else {}
    text = f"HTTP {response.status_code} code {error.get('code')}/{error.get('error_subcode')}: {error.get('message') or response.text[:200]}"
    if response.status_code == 429 or response.status_code >= 500 or error.get("code") in META_RETRY_CODES:
        raise RetryLater("Graph API: " + text, delay=_retry_after(response))
    raise GiveUp("Graph API refused the message: " + text)


async def send_whatsapp(graph: str, conn: OpenConnection, to: str, text: str, plan: SendPlan, timeout: float) -> str:
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to.lstrip("+")}
    if plan.mode == "template":
        template = plan.template or {}
        body["type"] = "template"
        body["template"] = {"name": template["name"], "language": {"code": template.get("language") or "en_US"}}
        if template.get("components"):
            body["template"]["components"] = template["components"]
    else:
        body.update(type="text", text={"preview_url": False, "body": text})
    response = await _post(f"{graph}/{conn.row.phone_number_id}/messages", timeout=timeout, json=body,
                           headers={"authorization": f"Bearer {conn.credentials['access_token']}"})
    result = _meta_result(response)
    try:
        return str(result["messages"][0]["id"])
    except (KeyError, IndexError, TypeError) as exc:
        raise RetryLater("Graph API answered without a message id") from exc


async def send_messenger(graph: str, conn: OpenConnection, psid: str, text: str, plan: SendPlan, timeout: float) -> str:
    """Messenger and Instagram (Facebook Login flavour): POST /{page-id}/messages with the Page token."""
    body: dict[str, Any] = {"recipient": {"id": psid}, "message": {"text": text}}
    if plan.mode == "human_agent":
        body.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    else:
        body["messaging_type"] = "RESPONSE"
    node = conn.row.page_id or "me"
    response = await _post(f"{graph}/{node}/messages", timeout=timeout, json=body,
                           params={"access_token": conn.credentials["access_token"]})
    result = _meta_result(response)
    if not result.get("message_id"):
        raise RetryLater("Graph API answered without a message_id")
    return str(result["message_id"])


async def send_tiktok(api: str, conn: OpenConnection, thread_id: str, text: str, timeout: float) -> str:
    body = {"business_id": conn.row.tiktok_business_id, "recipient_type": "CONVERSATION", "recipient": thread_id,
            "message_type": "TEXT", "text": {"body": text}}
    response = await _post(f"{api}/business/message/send/", timeout=timeout, json=body,
                           headers={"Access-Token": conn.credentials["access_token"]})
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryLater(f"TikTok API: HTTP {response.status_code}", delay=_retry_after(response))
    try:
        result = response.json()
    except ValueError as exc:
        raise RetryLater(f"TikTok API: HTTP {response.status_code}, not JSON") from exc
    code = result.get("code")
    if response.status_code >= 400 or code != 0:  # a non-zero code is an error even with HTTP 200
        text_ = f"HTTP {response.status_code} code {code}: {result.get('message')}"
        if code in TIKTOK_RETRY_CODES:
            raise RetryLater("TikTok API: " + text_)
        raise GiveUp("TikTok API refused the message: " + text_)
    try:
        return str(result["data"]["message"]["message_id"])
    except (KeyError, TypeError) as exc:
        raise RetryLater("TikTok API answered without a message_id") from exc
