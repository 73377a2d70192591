"""The provider error tree. Adapters translate every outside failure into one of these.

    ProviderError (502)
    ├── ProviderTimeout (504)            transient
    ├── ProviderConnectionError (502)    transient
    ├── ProviderRateLimited (429)        transient, may carry retry_after
    ├── ProviderUnavailable (503)        transient: 5xx, overloaded
    ├── ProviderBadResponse (502)        transient: malformed or cut response
    ├── ProviderAuthError (502)          permanent for this provider: our key was refused
    ├── ProviderBadRequest (400)         permanent: the upstream refused the request itself
    └── ProviderCircuitOpen (503)        skipped without a call: the provider keeps failing
"""

from __future__ import annotations

import math
from typing import Any

from aibroker.errors import BrokerError

# The wait a client is told when the provider named none (Retry-After is whole seconds, >= 1).
DEFAULT_RETRY_AFTER_SECONDS = 1


class ProviderError(BrokerError):
    status_code = 502
    error_type = "upstream_error"
    transient = False

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(message, **kw)
        self.provider = provider
        self.retry_after = retry_after


class ProviderTimeout(ProviderError):
    status_code = 504
    error_type = "upstream_timeout"
    transient = True


class ProviderConnectionError(ProviderError):
    error_type = "upstream_connection_error"
    transient = True


class ProviderRateLimited(ProviderError):
    """The provider's own 429. `error_type` names it in metrics and usage records; a client
    that gets it (retries and fallbacks exhausted) sees the broker's rate-limit contract:
    type rate_limit_exceeded, code upstream_rate_limited, and a Retry-After."""

    status_code = 429
    error_type = "upstream_rate_limited"
    transient = True

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None, **kw) -> None:  # type: ignore[no-untyped-def]
        kw.setdefault("code", "upstream_rate_limited")
        super().__init__(message, provider=provider, retry_after=retry_after, **kw)
        known = retry_after is not None and math.isfinite(retry_after) and retry_after > 0
        wait = max(1, math.ceil(retry_after)) if known else DEFAULT_RETRY_AFTER_SECONDS  # type: ignore[arg-type]
        self.headers = {"Retry-After": str(wait), **self.headers}

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["type"] = "rate_limit_exceeded"
        return body


class ProviderUnavailable(ProviderError):
    status_code = 503
    error_type = "upstream_unavailable"
    transient = True


class ProviderBadResponse(ProviderError):
    error_type = "upstream_bad_response"
    transient = True


class ProviderAuthError(ProviderError):
    error_type = "upstream_auth_error"


class ProviderBadRequest(ProviderError):
    status_code = 400
    error_type = "invalid_request_error"


class ProviderCircuitOpen(ProviderError):
    status_code = 503
    error_type = "upstream_unavailable"


def from_status(status: int, message: str, *, provider: str, retry_after: float | None) -> ProviderError:
    """Map an upstream HTTP status to the error tree."""
    if status == 429:
        return ProviderRateLimited(message, provider=provider, retry_after=retry_after)
    if status in (401, 403):
        return ProviderAuthError(message, provider=provider)
    if status == 408:
        return ProviderTimeout(message, provider=provider)
    if status >= 500:  # includes Anthropic's 529 overloaded
        return ProviderUnavailable(message, provider=provider, retry_after=retry_after)
    return ProviderBadRequest(message, provider=provider)
