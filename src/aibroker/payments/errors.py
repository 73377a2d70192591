"""Payment errors (4xx/5xx with the provider named)."""

from __future__ import annotations

from aibroker.errors import BrokerError


class PaymentsNotConfigured(BrokerError):
    status_code = 503
    error_type = "payments_not_configured"


class PaymentProviderError(BrokerError):
    status_code = 502
    error_type = "payment_provider_error"


class BadSignature(BrokerError):
    status_code = 400
    error_type = "invalid_signature"
