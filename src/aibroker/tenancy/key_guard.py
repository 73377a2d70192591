"""Per-key guards on top of the API key itself: an IP allowlist and request signing.

Client address: the TCP peer, unless that peer is one of AIBROKER_TRUSTED_PROXIES; then
X-Forwarded-For is read right to left, skipping trusted proxies, and the first address that
is not one is the client (a client cannot forge its way past a proxy that appends to it).

Signing: `X-Aibroker-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256(signing secret, "<t>." + raw body). The timestamp must be within the key's
window of the broker's clock (401 `signature_expired`), and a signature is accepted once:
it is stored until its window passes, so the same request again is 401 `signature_replayed`
on every process (the nonce lives in the database).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request

from aibroker.errors import AuthenticationError, InvalidRequest, PermissionDenied
from aibroker.kit.clock import utcnow

SIGNATURE_HEADER = "x-aibroker-signature"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_NETWORKS = 100
PURGE_EVERY = 200  # signed requests between purges of expired nonces


@dataclass(frozen=True, slots=True)
class KeyGuard:
    """What an API key demands of each request besides itself."""

    networks: tuple[Network, ...] = ()
    signing_secret: str | None = field(default=None, repr=False)
    window_seconds: int = 300


def parse_networks(entries: Iterable[str], *, param: str = "allowed_ips") -> list[str]:
    """CIDRs (or single addresses), IPv4 or IPv6, normalized; 400 naming a bad one."""
    found: list[str] = []
    for entry in entries:
        try:
            found.append(str(ipaddress.ip_network(str(entry).strip(), strict=False)))
        except ValueError:
            raise InvalidRequest(f"'{entry}' is not an IP address or CIDR network (e.g. 203.0.113.0/24, 2001:db8::/32).",
                                 param=param, code="invalid_cidr") from None
    if len(found) > MAX_NETWORKS:
        raise InvalidRequest(f"At most {MAX_NETWORKS} networks per key.", param=param)
    return sorted(set(found))


def networks_of(entries: Iterable[str] | None) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries or ())


def _address(raw: str | None) -> Address | None:
    if not raw:
        return None
    raw = raw.strip()
    if raw.startswith("[") and "]" in raw:  # [v6]:port
        raw = raw[1 : raw.index("]")]
    elif raw.count(":") == 1:  # v4:port
        raw = raw.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _within(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(request: Request, trusted: tuple[Network, ...]) -> Address | None:
    peer = _address(request.client.host if request.client else None)
    if peer is None or not trusted or not _within(peer, trusted):
        return peer
    hops = [h for part in request.headers.getlist("x-forwarded-for") for h in part.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # a garbled chain: believe only the proxy itself
        if not _within(address, trusted):
            return address
    return peer


def check_ip(request: Request, guard: KeyGuard, trusted: tuple[Network, ...]) -> None:
    if not guard.networks:
        return
    address = client_address(request, trusted)
    if address is None or not _within(address, guard.networks):
        raise PermissionDenied(
            f"This API key may not be used from {address or 'an unknown address'}: it is limited to its allowed networks.",
            code="ip_not_allowed", extra={"client_ip": str(address) if address else None},
        )


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value a client sends: `t=<timestamp>,v1=<hex>`."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp, signatures = None, []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) < 16:
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        raise AuthenticationError(f"Malformed {SIGNATURE_HEADER} header: send 't=<unix seconds>,v1=<hex HMAC-SHA256>'.",
                                  code="invalid_signature")
    return timestamp, signatures


class NonceBook:
    """Signatures already accepted, in the database until their window passes."""

    def __init__(self, sessions: Any) -> None:
        self._sessions = sessions
        self._count = itertools.count()

    async def first_use(self, signature: str, expires_at: Any) -> bool:
        from aibroker.models import SignedRequestNonce

        async with self._sessions() as session:
            if next(self._count) % PURGE_EVERY == 0:
                await session.execute(delete(SignedRequestNonce).where(SignedRequestNonce.expires_at < utcnow()))
            session.add(SignedRequestNonce(signature=signature, expires_at=expires_at))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
        return True


async def check_signature(request: Request, guard: KeyGuard, body: bytes, nonces: NonceBook) -> None:
    import datetime as dt

    assert guard.signing_secret is not None
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:
        raise AuthenticationError(
            f"This API key requires signed requests: send '{SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex>'.",
            code="signature_required",
        )
    timestamp, signatures = _parse(header)
    skew = abs(time.time() - timestamp)
    if skew > guard.window_seconds:
        raise AuthenticationError(
            f"The signature's timestamp is {int(skew)} s from the broker's clock; the window is {guard.window_seconds} s.",
            code="signature_expired",
        )
    expected = sign(guard.signing_secret, timestamp, body).split("v1=", 1)[1]
    match = next((s for s in signatures if hmac.compare_digest(s, expected)), None)
    if match is None:
        raise AuthenticationError("The request signature does not match its body and timestamp.", code="invalid_signature")
    expires = dt.datetime.fromtimestamp(timestamp + guard.window_seconds, dt.UTC)
    if not await nonces.first_use(match, expires):
        raise AuthenticationError("This signed request was already received (a replay).", code="signature_replayed")


@dataclass(slots=True)
class KeyGuards:
    """The process's side of the guards: which proxies are trusted, and the nonce book."""

    trusted: tuple[Network, ...]
    nonces: NonceBook


def trusted_networks(raw: str) -> tuple[Network, ...]:
    """AIBROKER_TRUSTED_PROXIES: comma-separated addresses or CIDRs (a bad entry fails startup)."""
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in raw.split(",") if e.strip())
