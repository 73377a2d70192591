"""Alert e-mail over SMTP with aiosmtplib: the server from AIBROKER_SMTP_URL
(smtp://user:pass@host:587 upgrades with STARTTLS when offered; smtps://host:465 is TLS from
the start), the message built from the event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import unquote, urlparse

import aiosmtplib

from aibroker.kit.money import format_micros

SUBJECTS = {
    "alert.spend_daily": "Daily AI spend reached {threshold} ({spent} on {period})",
    "alert.spend_monthly": "Monthly AI spend reached {threshold} ({spent} in {period})",
    "alert.provider_error_rate": "Provider {provider}: error rate {error_rate:.0%} ({failures}/{attempts})",
    "alert.circuit_open": "Provider {provider}: circuit breaker {state}",
    "alert.api_key_expiring": "API key {name} ({display_prefix}...) expires in {days_left} days",
    "alert.provider_key_expiring": "Provider key for {provider} expires in {days_left} days",
    "wallet.low_balance": "Wallet balance low: {balance}",
    "quota.warning": "Quota warning: {metric} at {threshold_percent}% ({period})",
    "quota.exceeded": "Quota reached: {metric} ({period})",
}


@dataclass(frozen=True, slots=True)
class SmtpServer:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError("AIBROKER_SMTP_URL must look like smtp://user:pass@host:587 or smtps://host:465")
        tls = parsed.scheme == "smtps"
        return cls(parsed.hostname, parsed.port or (465 if tls else 587),
                   unquote(parsed.username) if parsed.username else None,
                   unquote(parsed.password) if parsed.password else None, tls)


def subject(kind: str, payload: dict[str, Any]) -> str:
    values = {**payload}
    for money in ("threshold", "spent", "balance"):
        micros = payload.get(f"{money}_micros")
        if isinstance(micros, int):
            values[money] = format_micros(micros)
    try:
        return "[aibroker] " + SUBJECTS.get(kind, kind).format_map(_Lenient(values))
    except (ValueError, TypeError):
        return f"[aibroker] {kind}"


class _Lenient(dict):  # a field the payload lacks renders as "?" rather than failing the e-mail
    def __missing__(self, key: str) -> str:
        return "?"


def build(event_id: str, kind: str, organization_id: str | None, payload: dict[str, Any], created_at: Any,
          recipients: list[str], sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject(kind, payload)
    # One id per alert: a receiver (or a human) sees a retried send as the same message.
    message["Message-ID"] = make_msgid(idstring=event_id, domain="aibroker")
    message["X-Aibroker-Event-Id"] = event_id
    message["X-Aibroker-Event-Type"] = kind
    if created_at is not None:
        message["Date"] = format_datetime(created_at)
    lines = [subject(kind, payload).removeprefix("[aibroker] "), "", f"Organization: {organization_id or 'platform'}",
             f"Event: {event_id} ({kind})", "", json.dumps(payload, indent=2, sort_keys=True, default=str)]
    message.set_content("\n".join(lines))
    return message


async def send(message: EmailMessage, server: SmtpServer, timeout: float) -> None:
    await aiosmtplib.send(
        message, hostname=server.hostname, port=server.port, username=server.username, password=server.password,
        use_tls=server.use_tls, timeout=timeout,
    )
