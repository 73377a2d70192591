"""JSON logs, one object per line, with the request id of the request being served.
Never log secrets: nothing here logs headers or bodies."""

from __future__ import annotations

import contextvars
import logging
import sys

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_EXC_ATTR = "aibroker_request_id"


def tag_request_id(exc: BaseException, request_id: str) -> None:
    """Mark an exception escaping a request with its id, for log lines written after the
    request's context is gone (the 500 handler, the server's own "Exception in ASGI")."""
    try:
        setattr(exc, _EXC_ATTR, request_id)
    except AttributeError:  # an exception type with __slots__: the contextvar is all we have
        pass


def _request_id(record: logging.LogRecord) -> str | None:
    request_id = request_id_var.get()
    if request_id is None and record.exc_info and record.exc_info[1] is not None:
        request_id = getattr(record.exc_info[1], _EXC_ATTR, None)
    return request_id


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id(record)
        if request_id:
            entry["request_id"] = request_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the pipeline logs each AI request itself
    logging.getLogger("httpx").setLevel(logging.WARNING)
