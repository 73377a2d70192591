"""One error tree. Every domain error is a BrokerError with a status code; one handler renders it."""

from __future__ import annotations

from typing import Any


class BrokerError(Exception):
    status_code = 400
    error_type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type
        self.param = param
        self.code = code
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """OpenAI-style error object."""
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(BrokerError):
    status_code = 400


class AuthenticationError(BrokerError):
    status_code = 401
    error_type = "authentication_error"


class PermissionDenied(BrokerError):
    status_code = 403
    error_type = "permission_error"


class NotFound(BrokerError):
    status_code = 404
    error_type = "not_found_error"


class Conflict(BrokerError):
    status_code = 409
    error_type = "conflict_error"


class PayloadTooLarge(BrokerError):
    status_code = 413


class InsufficientBalance(BrokerError):
    status_code = 402
    error_type = "insufficient_balance"


def unstorable_value(exc: BaseException) -> InvalidRequest | None:
    """The 400 for an error that says a value of the request cannot be stored: PostgreSQL's data
    exceptions (SQLSTATE class 22: a NUL in text, a number out of range, a string longer than
    its column) and SQLite's integer overflow, wherever they sit in the exception's chain.
    Every field is bounded before it gets that far; this keeps a missed one a 400, not a 500."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if (isinstance(state, str) and state.startswith("22")) or (isinstance(error, OverflowError) and "SQLite" in str(error)):
            return InvalidRequest(
                "A value in the request cannot be stored: text may not contain NUL (\\u0000) characters, "
                "integers must fit in 64 bits and strings in their documented length.",
                code="invalid_value",
            )
        error = getattr(error, "orig", None) or error.__cause__ or error.__context__
    return None
