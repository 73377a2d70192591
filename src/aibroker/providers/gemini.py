"""Google Gemini API (generateContent, streamGenerateContent?alt=sse, embedContent,
batchEmbedContents), translated to and from OpenAI shapes.

Thinking tokens are billed as output (output = candidates + thoughts). Safety blocks
(promptFeedback.blockReason, or a SAFETY-like finishReason) come back as finish_reason
"content_filter" with the reason in `message.refusal`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aibroker.kit.ids import new_id
from aibroker.providers import translate as t
from aibroker.providers.base import Call, Result, Usage
from aibroker.providers.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderBadResponse,
    ProviderError,
    from_status,
)
from aibroker.providers.upstream import (
    Headers,
    Upstream,
    json_error,
    retry_after_seconds,
    sse_data,
)

BLOCKED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}
FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "MALFORMED_FUNCTION_CALL": "stop", "OTHER": "stop"}
# Gemini's responseSchema is an OpenAPI subset: JSON-Schema-only keys are refused.
_UNSUPPORTED_SCHEMA_KEYS = {"additionalProperties", "$schema", "strict", "$id", "$defs", "definitions"}


# -- request ---------------------------------------------------------------------------


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            url = t.image_url_of(part)
            inline = t.parse_data_url(url)
            if inline:
                parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
            else:
                parts.append({"fileData": {"mimeType": t.guess_media_type(url), "fileUri": url}})
        else:
            raise ProviderBadRequest(f"Gemini adapter cannot take content parts of type {kind!r}")
    return parts


def _tool_response(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id", "")
    text = t.text_of(message.get("content"))
    try:
        value = t.parse_arguments(text)  # a JSON object result is passed as is
    except ProviderBadRequest:
        value = {"result": text}
    return {"functionResponse": {"name": names.get(call_id) or message.get("name") or call_id, "response": value}}


def clean_schema(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: clean_schema(v) for k, v in schema.items() if k not in _UNSUPPORTED_SCHEMA_KEYS}
    if isinstance(schema, list):
        return [clean_schema(v) for v in schema]
    return schema


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
                         ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    if (limit := t.output_limit(body)) is not None:
        config["maxOutputTokens"] = limit
    if stops := t.stop_list(body):
        config["stopSequences"] = stops
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["responseSchema"] = clean_schema(schema)
    return config


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name", "")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    mode = {"auto": "AUTO", "required": "ANY", "none": "NONE"}.get(choice, "AUTO")
    return {"functionCallingConfig": {"mode": mode}}


def to_gemini(call: Call) -> dict[str, Any]:
    body = call.body
    messages = body.get("messages") or []
    names = t.tool_names_by_id(messages)
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_parts(message.get("content")))
            continue
        if role == "tool":
            role, parts = "user", [_tool_response(message, names)]
        elif role == "assistant":
            role, parts = "model", _parts(message.get("content"))
            for tool_call in message.get("tool_calls") or []:
                function = tool_call.get("function") or {}
                parts.append({"functionCall": {"name": function.get("name", ""),
                                               "args": t.parse_arguments(function.get("arguments"))}})
        else:
            role, parts = "user", _parts(message.get("content"))
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    if config := _generation_config(body):
        request["generationConfig"] = config
    if functions := t.function_tools(body):
        declarations = []
        for f in functions:
            declaration = {"name": f["name"], "description": f.get("description", "")}
            if f.get("parameters") and (f["parameters"].get("properties") or f["parameters"].get("type") != "object"):
                declaration["parameters"] = clean_schema(f["parameters"])
            declarations.append(declaration)
        request["tools"] = [{"functionDeclarations": declarations}]
        if tool_config := _tool_config(body.get("tool_choice")):
            request["toolConfig"] = tool_config
    return request


# -- response --------------------------------------------------------------------------


def usage_from(data: dict[str, Any] | None) -> Usage:
    data = data or {}
    candidates = int(data.get("candidatesTokenCount") or 0)
    thoughts = int(data.get("thoughtsTokenCount") or 0)
    return Usage(input_tokens=int(data.get("promptTokenCount") or 0), output_tokens=candidates + thoughts,
                 cached_tokens=int(data.get("cachedContentTokenCount") or 0))


def _blocked(data: dict[str, Any]) -> str | None:
    """Why Gemini refused, or None."""
    reason = (data.get("promptFeedback") or {}).get("blockReason")
    if reason:
        return f"Gemini blocked the prompt (blockReason {reason})."
    for candidate in data.get("candidates") or []:
        if candidate.get("finishReason") in BLOCKED:
            return f"Gemini stopped the answer for safety (finishReason {candidate['finishReason']})."
    return None


class _Reader:
    """Reads the text and function calls of one response (or stream chunk)."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, data: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]], str | None]:
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        candidates = data.get("candidates") or []
        candidate = candidates[0] if candidates else {}
        for part in (candidate.get("content") or {}).get("parts") or []:
            if "text" in part and not part.get("thought"):
                texts.append(part["text"])
            elif "functionCall" in part:
                fc = part["functionCall"]
                self.calls += 1
                calls.append(t.tool_call(fc.get("id") or new_id("call"), fc.get("name", ""),
                                         t.arguments_json(fc.get("args"))))
        return texts, calls, candidate.get("finishReason")


def _finish(reason: str | None, refusal: str | None, any_calls: bool) -> str:
    if refusal:
        return "content_filter"
    if any_calls:
        return "tool_calls"
    return FINISH.get(reason or "STOP", "stop")


def from_gemini(data: dict[str, Any], model: str, provider: str) -> Result:
    refusal = _blocked(data)
    if not data.get("candidates") and not refusal:
        raise ProviderBadResponse(f"{provider} answered without candidates", provider=provider)
    texts, calls, reason = _Reader().read(data)
    usage = usage_from(data.get("usageMetadata"))
    content = "".join(texts) if texts else (None if calls or refusal else "")
    body = t.completion(model=model, content=content, tool_calls=calls, finish_reason=_finish(reason, refusal, bool(calls)),
                        usage=usage, response_id=data.get("responseId"), refusal=refusal)
    return Result(body=body, usage=usage)


def _retry_delay(error: dict[str, Any]) -> float | None:
    """google.rpc.RetryInfo's retryDelay ("30s", "1.5s") as seconds."""
    for detail in error.get("details") or []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


# -- the adapter -----------------------------------------------------------------------


class GeminiProvider:
    def __init__(self, name: str, base_url: str, api_key: str | None, *, timeout: float, connect_timeout: float) -> None:
        self.name = name
        self._api_key = api_key
        self._http = Upstream(name, base_url, timeout=timeout, connect_timeout=connect_timeout, on_error=self._fail)

    def _fail(self, status: int, content: bytes, headers: Headers) -> ProviderError:
        data = json_error(content)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(data, list) and data and isinstance(data[0], dict):
            error = data[0].get("error")  # streamed calls answer errors as a one-element array
        error = error if isinstance(error, dict) else {}
        message = error.get("message") or f"upstream answered HTTP {status}"
        reasons = {d.get("reason") for d in error.get("details") or [] if isinstance(d, dict)}
        if "API_KEY_INVALID" in reasons:  # Gemini answers a bad key with 400, not 401
            return ProviderAuthError(message, provider=self.name)
        retry_after = retry_after_seconds(headers)
        if retry_after is None:
            retry_after = _retry_delay(error)
        return from_status(status, message, provider=self.name, retry_after=retry_after)

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {"content-type": "application/json", **call.extra_headers}
        key = call.api_key or self._api_key
        if key:
            headers["x-goog-api-key"] = key
        return headers

    def _path(self, call: Call, method: str) -> str:
        return f"/v1beta/models/{call.model.name}:{method}"

    async def chat(self, call: Call) -> Result:
        data = await self._http.request_json("POST", self._path(call, "generateContent"), body=to_gemini(call),
                                             headers=self._headers(call))
        return from_gemini(data, call.model.name, self.name)

    async def stream_chat(self, call: Call) -> AsyncIterator[dict[str, Any]]:
        chunks = t.ChunkMaker(call.model.name)
        reader = _Reader()
        usage, finished, started = Usage(), None, False
        path = self._path(call, "streamGenerateContent") + "?alt=sse"
        async with self._http.stream(path, body=to_gemini(call), headers=self._headers(call)) as lines:
            async for _event, payload in sse_data(lines):
                data = self._http.load_event(payload)
                if "error" in data:
                    raise self._fail(int((data["error"] or {}).get("code") or 500), payload.encode(), {})
                if not started:
                    started = True
                    yield chunks.delta({"role": "assistant", "content": ""})
                if data.get("usageMetadata"):
                    usage = usage_from(data["usageMetadata"])
                texts, calls, reason = reader.read(data)
                if texts and "".join(texts):
                    yield chunks.delta({"content": "".join(texts)})
                first_index = reader.calls - len(calls)  # Gemini sends each call whole, in order
                for offset, tool_call in enumerate(calls):
                    yield chunks.delta({"tool_calls": [{"index": first_index + offset, **tool_call}]})
                refusal = _blocked(data)
                if refusal:
                    yield chunks.delta({"refusal": refusal}, "content_filter")
                    finished = "content_filter"
                elif reason:
                    finished = _finish(reason, None, reader.calls > 0)
        if finished is None:
            raise ProviderBadResponse(f"{self.name} stream ended without a finishReason", provider=self.name)
        if finished != "content_filter":
            yield chunks.delta({}, finished)
        yield chunks.usage(usage)

    async def embed(self, call: Call) -> Result:
        texts = t.require_input_list(call)
        model = f"models/{call.model.name}"
        dims = call.body.get("dimensions")

        def request(text: str) -> dict[str, Any]:
            item: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
            if dims:
                item["outputDimensionality"] = dims
            return item

        headers = self._headers(call)
        if len(texts) == 1:
            data = await self._http.request_json("POST", self._path(call, "embedContent"), body=request(texts[0]), headers=headers)
            vectors = [(data.get("embedding") or {}).get("values")]
        else:
            data = await self._http.request_json("POST", self._path(call, "batchEmbedContents"),
                                                 body={"requests": [request(x) for x in texts]}, headers=headers)
            vectors = [(e or {}).get("values") for e in data.get("embeddings") or []]
        if len(vectors) != len(texts) or not all(isinstance(v, list) for v in vectors):
            raise ProviderBadResponse(f"{self.name} answered without embeddings", provider=self.name)
        # The embedding endpoints report no token counts: estimate as ~4 characters per token.
        usage = Usage(input_tokens=sum(max(1, -(-len(x) // 4)) for x in texts), estimated=True)
        return Result(body=t.embeddings_list(call, vectors, usage), usage=usage)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- media (endpoints3): image generation and audio transcription ------------------
    # Imports are local so this addition stays self-contained at the end of the module.

    async def images(self, call: Call) -> Result:
        """Image models answer generateContent with inlineData image parts when asked for the
        IMAGE modality; one call per image (these models return one image per call)."""
        import asyncio
        import time

        body = call.body
        request = {"contents": [{"role": "user", "parts": [{"text": str(body.get("prompt", ""))}]}],
                   "generationConfig": {"responseModalities": ["IMAGE"]}}
        path, headers = self._path(call, "generateContent"), self._headers(call)
        answers = await asyncio.gather(
            *(self._http.request_json("POST", path, body=request, headers=headers) for _ in range(int(body.get("n") or 1)))
        )
        data: list[dict[str, Any]] = []
        for answer in answers:
            if refusal := _blocked(answer):
                raise ProviderBadRequest(refusal, provider=self.name)
            for candidate in answer.get("candidates") or []:
                for part in (candidate.get("content") or {}).get("parts") or []:
                    inline = part.get("inlineData") or part.get("inline_data")
                    if inline and str(inline.get("mimeType", inline.get("mime_type", ""))).startswith("image/"):
                        mime, b64 = inline.get("mimeType") or inline.get("mime_type"), inline.get("data", "")
                        item = {"url": f"data:{mime};base64,{b64}"} if body.get("response_format") == "url" else {"b64_json": b64}
                        data.append(item)
        if not data:
            raise ProviderBadResponse(f"{self.name} answered without an image", provider=self.name)
        return Result(body={"created": int(time.time()), "data": data}, usage=Usage())

    async def transcribe(self, call: Call, audio: Any) -> Any:
        """Audio understanding: the file inline with an instruction to transcribe it. The
        duration comes from the AUDIO prompt tokens (Gemini counts 32 tokens per second)."""
        import base64

        from aibroker.providers.base import Transcription

        instruction = "Transcribe this audio exactly. Answer with the transcript only."
        if call.body.get("language"):
            instruction += f" The language is {call.body['language']}."
        if call.body.get("prompt"):
            instruction += f" Context: {call.body['prompt']}"
        from aibroker.providers import gemini_files

        uploaded = None
        if len(audio.content) > gemini_files.inline_limit():  # long audio: through the Files API
            key_headers = {k: v for k, v in self._headers(call).items() if k != "content-type"}
            uploaded = await gemini_files.upload(self._http, key_headers, audio.content, audio.content_type, audio.filename)
            media = {"fileData": {"mimeType": audio.content_type, "fileUri": uploaded.get("uri")}}
        else:
            media = {"inlineData": {"mimeType": audio.content_type, "data": base64.b64encode(audio.content).decode()}}
        request: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": instruction}, media]}]}
        if call.body.get("temperature") is not None:
            request["generationConfig"] = {"temperature": float(call.body["temperature"])}
        try:
            data = await self._http.request_json("POST", self._path(call, "generateContent"), body=request, headers=self._headers(call))
        finally:
            if uploaded is not None:
                await gemini_files.delete(self._http, key_headers, uploaded)
        if refusal := _blocked(data):
            raise ProviderBadRequest(refusal, provider=self.name)
        texts, _, _ = _Reader().read(data)
        details = (data.get("usageMetadata") or {}).get("promptTokensDetails") or []
        audio_tokens = sum(int(d.get("tokenCount") or 0) for d in details if d.get("modality") == "AUDIO")
        seconds = audio_tokens / 32 if audio_tokens else None
        body: dict[str, Any] = {"text": "".join(texts).strip()}
        if seconds is not None:
            body["duration"] = seconds
        return Transcription(body=body, seconds=seconds, usage=usage_from(data.get("usageMetadata")))
