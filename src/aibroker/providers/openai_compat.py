"""OpenAI wire format: OpenAI itself and every OpenAI-compatible server (Together, xAI,
Groq, Mistral, DeepSeek, vLLM, llama.cpp server, custom base URLs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from aibroker.catalog.registry import CHAT, EMBEDDING, ModelEntry
from aibroker.providers.base import (
    AudioFile,
    Call,
    Result,
    SpeechAudio,
    Transcription,
    Usage,
    usage_from_openai,
)
from aibroker.providers.errors import ProviderBadResponse, ProviderError, from_status
from aibroker.providers.upstream import (
    FilePart,
    Headers,
    Upstream,
    retry_after_seconds,
    sse_data,
)

DISCOVERY_TIMEOUT_SECONDS = 3.0  # a slow local server must not hold up startup
DISCOVERED_CONTEXT = 32768  # when the server does not say


def discovered_entry(provider: str, model: dict[str, Any]) -> ModelEntry | None:
    """A model a self-hosted server lists (GET /models) that the catalog lacks: zero cost, still
    recorded. The context length comes from vLLM's `max_model_len` or llama.cpp's `meta.n_ctx_train`."""
    name = model.get("id")
    if not isinstance(name, str) or not name:
        return None
    meta = model.get("meta") if isinstance(model.get("meta"), dict) else {}
    context = model.get("max_model_len") or meta.get("n_ctx_train") or meta.get("n_ctx")
    context = context if isinstance(context, int) and context > 0 else DISCOVERED_CONTEXT
    kind = EMBEDDING if "embed" in name.lower() else CHAT
    return ModelEntry(
        id=f"{provider}/{name}", provider=provider, name=name, kind=kind, context_length=context,
        max_output_tokens=0 if kind == EMBEDDING else min(context, 8192),
        capabilities=frozenset() if kind == EMBEDDING else frozenset({"streaming", "tools", "json"}),
    )


def _error_message(body: bytes, status: int) -> str:
    try:
        error = orjson.loads(body).get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return f"upstream answered HTTP {status}"


class OpenAICompatProvider:
    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int = 512,
    ) -> None:
        self.name = name
        self._api_key = api_key
        self._http = Upstream(
            name, base_url, timeout=timeout, connect_timeout=connect_timeout, on_error=self._fail,
            max_connections=max_connections,
        )

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {"content-type": "application/json", **call.extra_headers}
        key = call.api_key or self._api_key
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _fail(self, status: int, body: bytes, headers: Headers) -> ProviderError:
        return from_status(
            status, _error_message(body, status), provider=self.name, retry_after=retry_after_seconds(headers)
        )

    async def chat(self, call: Call) -> Result:
        data = await self._http.request_json("POST", "/chat/completions", body=call.body, headers=self._headers(call))
        if not isinstance(data.get("choices"), list):
            raise ProviderBadResponse(f"{self.name} answered without choices", provider=self.name)
        return Result(body=data, usage=usage_from_openai(data.get("usage")))

    async def embed(self, call: Call) -> Result:
        data = await self._http.request_json("POST", "/embeddings", body=call.body, headers=self._headers(call))
        if not isinstance(data.get("data"), list):
            raise ProviderBadResponse(f"{self.name} answered without data", provider=self.name)
        return Result(body=data, usage=usage_from_openai(data.get("usage")))

    async def stream_chat(self, call: Call) -> AsyncIterator[dict[str, Any]]:
        body = dict(call.body)
        body["stream"] = True
        # Always ask for usage so streamed calls are billed at their real token counts.
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        async with self._http.stream("/chat/completions", body=body, headers=self._headers(call)) as lines:
            async for _event, payload in sse_data(lines):
                if payload == "[DONE]":
                    return
                chunk = self._http.load_event(payload)
                if "error" in chunk:
                    raise ProviderBadResponse(_error_message(payload.encode(), 200), provider=self.name)
                yield chunk
        raise ProviderBadResponse(f"{self.name} stream ended without [DONE]", provider=self.name)

    # -- media: images and transcription -----------------------------------------------

    async def images(self, call: Call) -> Result:
        data = await self._http.request_json("POST", "/images/generations", body=call.body, headers=self._headers(call))
        if not isinstance(data.get("data"), list):
            raise ProviderBadResponse(f"{self.name} answered without data", provider=self.name)
        return Result(body=data, usage=Usage())  # billed per image; token counts are informational

    async def transcribe(self, call: Call, audio: AudioFile) -> Transcription:
        fields = {k: str(v) for k, v in call.body.items() if v is not None}
        if fields.get("response_format") != "verbose_json":
            fields["response_format"] = "json"  # the broker needs JSON to read text and duration
        files = [FilePart("file", audio.filename, audio.content, audio.content_type)]
        data = await self._http.post_multipart("/audio/transcriptions", fields=fields, files=files, headers=self._headers(call))
        if not isinstance(data.get("text"), str):
            raise ProviderBadResponse(f"{self.name} answered without text", provider=self.name)
        # verbose_json has "duration"; json has usage {"type": "duration", "seconds"} on whisper-1
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        seconds = data.get("duration") if data.get("duration") is not None else usage.get("seconds")
        return Transcription(body=data, seconds=float(seconds) if isinstance(seconds, (int, float)) else None)

    # -- moderation and speech: passed through ----------------------------------------

    async def moderate(self, call: Call) -> Result:
        data = await self._http.request_json("POST", "/moderations", body=call.body, headers=self._headers(call))
        if not isinstance(data.get("results"), list):
            raise ProviderBadResponse(f"{self.name} answered without results", provider=self.name)
        return Result(body=data, usage=Usage())  # free upstream

    async def speech(self, call: Call) -> SpeechAudio:
        content, content_type = await self._http.request_bytes("/audio/speech", body=call.body, headers=self._headers(call))
        if not content:
            raise ProviderBadResponse(f"{self.name} answered without audio", provider=self.name)
        return SpeechAudio(content, content_type)

    async def list_models(self) -> list[ModelEntry]:
        """GET /models (OpenAI list format): a self-hosted server's models as zero-cost catalog
        entries. The pool asks only providers flagged local; hosted ones are never priced at 0."""
        headers = {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        data = await self._http.request_json("GET", "/models", headers=headers, timeout=DISCOVERY_TIMEOUT_SECONDS)
        listed = data.get("data") if isinstance(data.get("data"), list) else []
        return [entry for m in listed if isinstance(m, dict) and (entry := discovered_entry(self.name, m))]

    async def aclose(self) -> None:
        await self._http.aclose()
