"""Fake Google Gemini API (v1beta) over real HTTP: generateContent, streamGenerateContent
(?alt=sse), embedContent, batchEmbedContents, the Files API (gemini_files: resumable uploads
that fileData parts then name), the google.rpc error envelope, faults.

Deterministic output: "Echo: " + the last user turn's text (after a functionResponse:
"Echo: " + its JSON). With tools (mode not NONE) the reply is a functionCall of the first
(or only allowed) function with args {"text": <last user text>}. responseMimeType
application/json makes the reply {"echo": <text>}. A user text containing BLOCKME is
refused at the prompt (promptFeedback.blockReason SAFETY); UNSAFE stops the answer with
finishReason SAFETY. Tokens: a content costs its words + 3, an image 258, the system
instruction its words; output is the reply's words (FUNCTION_CALL_TOKENS for a call).
`cached_tokens` / `thinking_tokens` make usageMetadata report cachedContentTokenCount /
thoughtsTokenCount (promptTokenCount includes the cached ones, as Gemini's does).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes._server import FakeServer, Fault, StreamCut, StreamFault, count_words, split_chunks
from tests.fakes.gemini_files import GeminiFiles
from tests.fakes.openai_upstream import embed_text

PER_CONTENT_TOKENS = 3
IMAGE_TOKENS = 258
FUNCTION_CALL_TOKENS = 5
STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

__all__ = ["FakeGemini", "Fault", "StreamFault", "count_prompt_tokens", "reply_of", "error_body", "embed_text"]


def _texts(parts: list[dict[str, Any]]) -> list[str]:
    out = []
    for part in parts or []:
        if "text" in part:
            out.append(part["text"])
        elif "functionResponse" in part:
            out.append(json.dumps(part["functionResponse"].get("response"), sort_keys=True))
    return out


def _tokens(parts: list[dict[str, Any]]) -> int:
    images = sum(1 for p in parts or [] if "inlineData" in p or "fileData" in p)
    return sum(count_words(t) for t in _texts(parts)) + images * IMAGE_TOKENS


def count_prompt_tokens(body: Mapping[str, Any]) -> int:
    system = (body.get("systemInstruction") or {}).get("parts") or []
    return _tokens(system) + sum(_tokens(c.get("parts") or []) + PER_CONTENT_TOKENS for c in body.get("contents") or [])


def _last_user(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    users = [c for c in body.get("contents") or [] if c.get("role", "user") == "user"]
    return users[-1].get("parts") or [] if users else []


def reply_of(body: Mapping[str, Any]) -> str:
    return "Echo: " + " ".join(t for t in _texts(_last_user(body)) if t)


def chosen_function(body: Mapping[str, Any]) -> str | None:
    declarations = [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if not declarations or config.get("mode") == "NONE" or any("functionResponse" in p for p in _last_user(body)):
        return None
    allowed = config.get("allowedFunctionNames") or []
    return str(allowed[0] if allowed else declarations[0]["name"])


def error_body(status: int, message: str | None = None, reason: str | None = None,
               retry_after: float | None = None) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if reason:
        details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                        "domain": "googleapis.com"})
    if retry_after is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"})
    error: dict[str, Any] = {"code": status, "message": message or f"Fake Gemini error {status}.",
                             "status": STATUSES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")}
    if details:
        error["details"] = details
    return {"error": error}


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(body["contents"]):
        if content.get("role", "user") not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{i}].role)"
        if not content.get("parts"):
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
    return None


class FakeGemini(FakeServer):
    thread_name = "fake-gemini"
    malformed_body = b'{"candidates": [{"content": {"parts": [{"text": '

    def __init__(self, api_key: str | None = "gemini-test-key") -> None:
        self.api_key = api_key
        self.cached_tokens = 0
        self.thinking_tokens = 0
        self.files = GeminiFiles(self)
        super().__init__([Route("/v1beta/models/{target:path}", self._dispatch, methods=["POST"]), *self.files.routes()])

    def reset(self) -> None:
        super().reset()
        self.files.reset()
        self.cached_tokens = self.thinking_tokens = 0

    def _check_auth(self, request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            return self._error(403, "Method doesn't allow unregistered callers (callers without established "
                                    "identity). Please use API Key or other form of API consumer identity to call this API.")
        if self.api_key is not None and key != self.api_key:
            return JSONResponse(error_body(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"),
                                status_code=400)
        return None

    def _error(self, status: int, message: str | None = None, code: str | None = None,
               retry_after: float | None = None) -> Response:
        return JSONResponse(error_body(status, message, code, retry_after), status_code=status)

    def _is_stream(self, request: Request, body: Any) -> bool:
        return request.url.path.endswith(":streamGenerateContent")

    async def _dispatch(self, request: Request) -> Response:
        model, _, method = request.path_params["target"].partition(":")
        body, fault, early = await self._admit(request)
        if early is not None:
            return early
        if method == "generateContent":
            return self._generate(model, body)
        if method == "streamGenerateContent":
            if request.query_params.get("alt") != "sse":
                return self._error(400, "this fake streams only with alt=sse")
            return self._generate(model, body, fault, stream=True)
        if method in ("embedContent", "batchEmbedContents"):
            return self._embed(model, method, body)
        return self._error(404, f"Method {method} not found.")

    def _response(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        prompt = count_prompt_tokens(body)
        user_text = " ".join(t for t in _texts(_last_user(body)) if t)
        head: dict[str, Any] = {"modelVersion": model, "responseId": self._new_id("resp")}
        if "BLOCKME" in user_text:
            return {**head, "promptFeedback": {"blockReason": "SAFETY"},
                    "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt}}
        config = body.get("generationConfig") or {}
        function = chosen_function(body)
        finish, output = "STOP", 0
        if "UNSAFE" in user_text:
            parts: list[dict[str, Any]] = []
            finish = "SAFETY"
        elif function:
            parts = [{"functionCall": {"name": function, "args": {"text": user_text}}}]
            output = FUNCTION_CALL_TOKENS
        else:
            text = reply_of(body)
            limit = config.get("maxOutputTokens")
            pieces = split_chunks(text)
            if limit is not None and len(pieces) > int(limit):
                text, finish = "".join(pieces[: int(limit)]), "MAX_TOKENS"
            elif config.get("responseMimeType") == "application/json":
                text = json.dumps({"echo": text})
            parts, output = [{"text": text}], count_words(text)
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}
        if finish == "SAFETY":
            candidate["content"] = {"role": "model"}
            candidate["safetyRatings"] = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                                           "blocked": True}]
        usage = {"promptTokenCount": prompt, "candidatesTokenCount": output,
                 "totalTokenCount": prompt + output + self.thinking_tokens}
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = min(self.cached_tokens, prompt)
        if self.thinking_tokens:
            usage["thoughtsTokenCount"] = self.thinking_tokens
        return {**head, "candidates": [candidate], "usageMetadata": usage}

    def _generate(self, model: str, body: Any, fault: Fault | None = None, *, stream: bool = False) -> Response:
        if problem := _validate(body):
            return self._error(400, problem)
        if missing := self.files.unknown_file(body):
            return self._error(400, f"File {missing} does not exist or is not ACTIVE.")
        response = self._response(model, body)
        if not stream:
            return JSONResponse(response)
        return StreamingResponse(self._events(response, fault), media_type="text/event-stream")

    async def _events(self, response: dict[str, Any], fault: Fault | None) -> AsyncIterator[bytes]:
        chunks: list[dict[str, Any]] = []
        head = {k: response[k] for k in ("modelVersion", "responseId")}
        usage = response["usageMetadata"]
        partial_usage = {"promptTokenCount": usage["promptTokenCount"], "totalTokenCount": usage["promptTokenCount"]}
        candidate = (response.get("candidates") or [None])[0]
        if candidate is None:
            chunks.append(response)  # a blocked prompt: one chunk with the promptFeedback
        else:
            parts = candidate["content"].get("parts") or []
            pieces = split_chunks(parts[0]["text"]) if parts and "text" in parts[0] else []
            for piece in pieces[:-1]:
                chunks.append({**head, "candidates": [{"content": {"parts": [{"text": piece}], "role": "model"},
                                                      "index": 0}], "usageMetadata": partial_usage})
            last_parts = [{"text": pieces[-1]}] if pieces else parts
            last = {**candidate, "content": {**candidate["content"], "parts": last_parts}}
            if not last_parts:
                last["content"] = candidate["content"]
            chunks.append({**head, "candidates": [last], "usageMetadata": usage})
        cut = fault.cut_after_chunks if fault else None
        for n, chunk in enumerate(chunks):
            if n == cut:
                raise StreamCut(f"injected cut after {cut} chunks")
            if n == 1 and fault and fault.malformed_json:
                yield b"data: {not json\r\n\r\n"
            yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()
        if cut is not None and cut >= len(chunks):
            raise StreamCut("injected cut at the end")

    def _embed(self, model: str, method: str, body: Any) -> Response:
        requests = [body] if method == "embedContent" else (body or {}).get("requests")
        if not isinstance(requests, list) or not requests:
            return self._error(400, "* BatchEmbedContentsRequest.requests: requests is not specified")
        embeddings = []
        for i, item in enumerate(requests):
            if method == "batchEmbedContents" and item.get("model") != f"models/{model}":
                return self._error(400, f"requests[{i}].model must be models/{model}")
            texts = _texts(((item or {}).get("content") or {}).get("parts") or [])
            if not texts:
                return self._error(400, "* EmbedContentRequest.content: content is not specified")
            values = embed_text(" ".join(texts))
            if item.get("outputDimensionality"):
                values = values[: int(item["outputDimensionality"])]
            embeddings.append({"values": values})
        if method == "embedContent":
            return JSONResponse({"embedding": embeddings[0]})
        return JSONResponse({"embeddings": embeddings})
