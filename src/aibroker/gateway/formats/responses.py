"""OpenAI's Responses API request -> the pipeline's chat-shaped body. Pure, no I/O.

The request is checked strictly (as formats/schemas.py checks chat), its input items are
normalized (every item gets an id, string contents become parts) so they can be stored and
listed, and the whole history (a previous response's input + output, then this input) becomes
chat messages. Mapping per the wire reference, section 2.1."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aibroker.errors import InvalidRequest
from aibroker.gateway.formats.schemas import MAX_TOKENS
from aibroker.kit.ids import new_id

OPEN = ConfigDict(extra="allow", strict=True)
# aibroker's own body fields kept through the translation (body_for strips them before upstream;
# profile / group / user_name are read by call_context).
BROKER_FIELDS = ("feature", "cache", "aibroker")
# Responses fields the broker does not serve: refused with a clear 400 rather than ignored.
UNSUPPORTED = {"background": "background responses", "conversation": "conversations (use previous_response_id)",
               "prompt": "stored prompts"}


class FunctionTool(BaseModel):
    model_config = OPEN

    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(BaseModel):
    model_config = OPEN

    type: Literal["function"]
    name: str = Field(min_length=1)


class TextFormat(BaseModel):
    model_config = OPEN

    type: Literal["text"]


class JsonObjectFormat(BaseModel):
    model_config = OPEN

    type: Literal["json_object"]


class JsonSchemaFormat(BaseModel):
    model_config = OPEN

    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(BaseModel):
    model_config = OPEN

    format: Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


Metadata = Annotated[dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]], Field(max_length=16)]


class ResponsesRequest(BaseModel):
    """OpenAI's `CreateResponse`: function tools only; `store` defaults to true."""

    model_config = OPEN

    model: str = Field(min_length=1, description="`provider/model` or a bare catalog name; any upstream provider.")
    input: Annotated[str, Field(min_length=1)] | Annotated[list[dict[str, Any]], Field(min_length=1)] = Field(
        description="A string (one user message) or input items: messages (input_text / input_image parts), "
        "function_call, function_call_output, item_reference.")
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedFunction | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    metadata: Metadata | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=60)
    store: bool = True
    stream: bool = False
    user: str | None = None
    include: list[str] | None = None
    feature: str | None = Field(default=None, description="aibroker: the feature (usage type) this call serves.")


def check_supported(raw: dict[str, Any]) -> None:
    for name, what in UNSUPPORTED.items():
        if raw.get(name) not in (None, False):
            raise InvalidRequest(f"'{name}': aibroker does not serve {what} on /v1/responses.", param=name, code="unsupported_parameter")


# -- input items: normalized for storage ----------------------------------------------


def _fail(where: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{where}': {why}", param=where)


def _text_field(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise _fail(f"{where}.{name}", "must be a string.")
    return value


def _input_part(part: Any, where: str, role: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _fail(where, "a content part must be an object.")
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        normalized = {"type": kind, "text": _text_field(part, "text", where)}
        if kind == "output_text":
            normalized["annotations"] = []
        return normalized
    if kind == "refusal" and role == "assistant":
        return {"type": "refusal", "refusal": _text_field(part, "refusal", where)}
    if kind == "input_image" and role != "assistant":
        url, file_id = part.get("image_url"), part.get("file_id")
        if not (isinstance(url, str) and url) and not (isinstance(file_id, str) and file_id):
            raise _fail(where, "an input_image needs image_url (a URL or data: URL) or file_id.")
        detail = part.get("detail") or "auto"
        if detail not in ("auto", "low", "high", "original"):
            raise _fail(f"{where}.detail", "must be auto, low, high or original.")
        return {"type": "input_image", "image_url": url, "file_id": file_id, "detail": detail}
    if kind == "input_file" and role != "assistant":
        keep = {k: part[k] for k in ("file_id", "file_url", "file_data", "filename") if isinstance(part.get(k), str)}
        if not any(k in keep for k in ("file_id", "file_url", "file_data")):
            raise _fail(where, "an input_file needs file_id, file_url or file_data.")
        return {"type": "input_file", **keep}
    raise _fail(f"{where}.type", f"'{kind}' is not a content part of a {role} message.")


def _message_item(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise _fail(f"{where}.role", "must be user, assistant, system or developer.")
    content = item.get("content")
    if isinstance(content, str):
        parts = [{"type": "output_text", "text": content, "annotations": []} if role == "assistant" else {"type": "input_text", "text": content}]
    elif isinstance(content, list) and content:
        parts = [_input_part(p, f"{where}.content.{i}", role) for i, p in enumerate(content)]
    else:
        raise _fail(f"{where}.content", "must be a string or a non-empty list of content parts.")
    return {"type": "message", "id": _own_id(item, "msg"), "role": role, "status": "completed", "content": parts}


def _own_id(item: dict[str, Any], prefix: str) -> str:
    given = item.get("id")
    if given is not None and not (isinstance(given, str) and 0 < len(given) <= 100):
        raise InvalidRequest("An item's 'id' must be a string of 1 to 100 characters.", param="input")
    return given or new_id(prefix)


def normalize_item(item: Any, where: str) -> dict[str, Any]:
    """One input item in its stored form (id given), or a 400 naming what is wrong."""
    if not isinstance(item, dict):
        raise _fail(where, "an input item must be an object.")
    kind = item.get("type")
    if kind is None or kind == "message":
        return _message_item(item, where)
    if kind == "function_call":
        arguments = item.get("arguments", "")
        if not isinstance(arguments, str):
            raise _fail(f"{where}.arguments", "must be a JSON string.")
        return {"type": "function_call", "id": _own_id(item, "fc"), "call_id": _text_field(item, "call_id", where),
                "name": _text_field(item, "name", where), "arguments": arguments, "status": "completed"}
    if kind == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            output = [_input_part(p, f"{where}.output.{i}", "user") for i, p in enumerate(output)]
        elif not isinstance(output, str):
            raise _fail(f"{where}.output", "must be a string or a list of input parts.")
        return {"type": "function_call_output", "id": _own_id(item, "fco"), "call_id": _text_field(item, "call_id", where),
                "output": output, "status": "completed"}
    if kind == "reasoning":
        return {"type": "reasoning", "id": _own_id(item, "rs"), "summary": item.get("summary") or []}
    if kind == "item_reference":
        return {"type": "item_reference", "id": _text_field(item, "id", where)}
    raise _fail(f"{where}.type", f"'{kind}' is not an input item aibroker serves (message, function_call, "
                "function_call_output, reasoning, item_reference).")


def normalize_input(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [normalize_item({"role": "user", "content": value}, "input")]
    return [normalize_item(item, f"input.{i}") for i, item in enumerate(value)]


# -- items -> chat messages -------------------------------------------------------------


def _chat_part(part: dict[str, Any]) -> dict[str, Any]:
    if part["type"] in ("input_text", "output_text"):
        return {"type": "text", "text": part["text"]}
    if part["type"] == "input_image":
        if not part.get("image_url"):
            raise InvalidRequest("input_image by file_id is not served; send image_url.", param="input")
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    file = {k: part[k] for k in ("file_id", "file_data", "filename") if k in part}
    if not file.get("file_id") and not file.get("file_data"):
        raise InvalidRequest("input_file by file_url is not served; send file_data or file_id.", param="input")
    return {"type": "file", "file": file}


def _joined_text(parts: list[dict[str, Any]]) -> str:
    return "".join(p.get("text") or p.get("refusal") or "" for p in parts)


def to_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalized items -> chat messages. An assistant's text and the function calls after it
    become one assistant message (separate ones break Anthropic upstreams)."""
    messages: list[dict[str, Any]] = []
    assistant: dict[str, Any] | None = None
    for item in items:
        kind = item["type"]
        if kind == "function_call":
            if assistant is None:
                assistant = {"role": "assistant", "content": None}
                messages.append(assistant)
            call = {"id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": item["arguments"] or "{}"}}
            assistant.setdefault("tool_calls", []).append(call)
            continue
        assistant = None
        if kind == "message" and item["role"] == "assistant":
            assistant = {"role": "assistant", "content": _joined_text(item["content"])}
            messages.append(assistant)
        elif kind == "message":
            role = "system" if item["role"] == "developer" else item["role"]
            parts = [_chat_part(p) for p in item["content"]]
            simple = all(p["type"] == "text" for p in parts)
            messages.append({"role": role, "content": "".join(p["text"] for p in parts) if simple else parts})
        elif kind == "function_call_output":
            output = item["output"]
            text = output if isinstance(output, str) else " ".join(p.get("text", "") for p in output)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
        # reasoning items carry nothing a chat upstream can read: dropped
    return messages


def to_chat(request: ResponsesRequest, raw: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat-shaped body the pipeline runs. `history`: every item in order (the previous
    response's chain, then this request's input, references resolved)."""
    messages = to_messages(history)
    if request.instructions:
        messages.insert(0, {"role": "system", "content": request.instructions})
    if not any(m["role"] in ("user", "assistant", "tool") for m in messages):
        raise InvalidRequest("'input' has no user, assistant or tool turn to answer.", param="input")
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.tools:
        body["tools"] = [{"type": "function", "function": _function(t)} for t in request.tools]
    if request.tool_choice is not None:
        choice = request.tool_choice
        body["tool_choice"] = choice if isinstance(choice, str) else {"type": "function", "function": {"name": choice.name}}
    if request.parallel_tool_calls is not None and request.tools:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    fmt = request.text.format if request.text else None
    if isinstance(fmt, JsonSchemaFormat):
        schema: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema_}
        if fmt.strict is not None:
            schema["strict"] = fmt.strict
        if fmt.description:
            schema["description"] = fmt.description
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(fmt, JsonObjectFormat):
        body["response_format"] = {"type": "json_object"}
    for name in ("temperature", "top_p", "user"):
        if getattr(request, name) is not None:
            body[name] = getattr(request, name)
    if request.max_output_tokens is not None:
        body["max_tokens"] = request.max_output_tokens
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # the usage chunk carries the cost
    body.update({name: raw[name] for name in BROKER_FIELDS if name in raw})
    return body


def _function(tool: FunctionTool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    function["parameters"] = tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}
    if tool.strict is not None:
        function["strict"] = tool.strict
    return function
