"""Request shapes of the AI routes. Unknown fields pass through to the provider untouched,
but every field the broker or OpenAI defines is checked for its type (strictly: the raw body
is what goes upstream, so "yes" is not a boolean and "16" is not an integer) before any
upstream call or charge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Token counts land in INTEGER columns (usage records, limits): nothing larger is meaningful.
MAX_TOKENS = 2**31 - 1
# OpenAI's own bound on one embeddings request's inputs.
MAX_EMBEDDING_INPUTS = 2048

OPEN = ConfigDict(extra="allow", strict=True)


class _Part(BaseModel):
    model_config = OPEN


class TextPart(_Part):
    type: Literal["text"]
    text: str


class ImageURL(_Part):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Part):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Part):
    data: str = Field(min_length=1)
    format: str = Field(min_length=1)


class AudioPart(_Part):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(_Part):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(_Part):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[TextPart | ImagePart | AudioPart | FilePart | RefusalPart, Field(discriminator="type")]


class FunctionCall(_Part):
    name: str = Field(min_length=1)
    arguments: str


class ToolCall(_Part):
    id: str = Field(min_length=1)
    type: Literal["function"]
    function: FunctionCall


class Message(BaseModel):
    model_config = OPEN

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | Annotated[list[ContentPart], Field(min_length=1)] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content_where_required(self) -> Message:
        extra = self.model_extra or {}
        if self.content is None and not (
            self.role == "assistant" and (self.tool_calls or extra.get("function_call") or extra.get("audio"))
        ):
            needs = "content, tool_calls or function_call" if self.role == "assistant" else "content"
            raise ValueError(f"a '{self.role}' message needs {needs}")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs tool_call_id")
        return self


class StreamOptions(BaseModel):
    model_config = OPEN

    include_usage: bool = False


class FunctionDefinition(_Part):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Part):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Part):
    name: str = Field(min_length=1)


class NamedToolChoice(_Part):
    type: Literal["function"]
    function: NamedFunction


class TextFormat(_Part):
    type: Literal["text"]


class JsonObjectFormat(_Part):
    type: Literal["json_object"]


class JsonSchema(_Part):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class JsonSchemaFormat(_Part):
    type: Literal["json_schema"]
    json_schema: JsonSchema


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]
Tokens = Annotated[int, Field(ge=1, le=MAX_TOKENS)]


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request, plus aibroker's optional `feature`, `user_name` and `cache`."""

    model_config = OPEN

    model: str = Field(min_length=1, description="`provider/model` or a bare catalog name.")
    messages: list[Message] = Field(min_length=1, description="The conversation so far; at least one message.")
    max_tokens: Tokens | None = None
    max_completion_tokens: Tokens | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice per request is supported.")
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    feature: str | None = Field(default=None, description="aibroker: the feature (usage type) this call serves.")


Text = Annotated[str, Field(min_length=1)]
TokenId = Annotated[int, Field(ge=0, le=MAX_TOKENS)]
TokenIds = Annotated[list[TokenId], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]


class EmbeddingRequest(BaseModel):
    model_config = OPEN

    model: str = Field(min_length=1)
    input: (
        Text
        | Annotated[list[Text], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
    ) = Field(description="A string, a list of strings, token ids, or a list of token-id lists; none empty.")
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1, le=65536)
    user: str | None = None
    feature: str | None = None


class BrokerRequest(BaseModel):
    """Seed 000's `POST /api/ai/broker`: one prompt in, one answer with its cost out."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    organizationId: str | None = Field(default=None, description="Required with the platform service key.")
    prompt: str = Field(min_length=1)
    systemPrompt: str | None = None
    usageType: str | None = Field(
        default=None,
        description="The feature / usage type, e.g. CHAT_RESPONSE. The `x-aibroker-feature` header wins; "
        "without either, the key's default feature, else CHAT_RESPONSE.",
    )
    feature: str | None = Field(default=None, description="Same as usageType (the name the other routes use).")
    profile: str | None = Field(default=None, description="Routing profile (or header `x-aibroker-profile`).")
    group: str | None = Field(default=None, description="Routing group (or header `x-aibroker-group`).")
    cache: bool | None = Field(default=None, description="false: never read or write the response cache; true: cache it.")
    aibroker: dict[str, Any] | None = Field(default=None, description='Consensus features: {"include_votes": true} adds the votes.')
    userId: str | None = None
    userName: str | None = None
    model: str | None = Field(default=None, description="Defaults to the platform's default model.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    maxTokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)

    @model_validator(mode="after")
    def _one_feature(self) -> BrokerRequest:
        if self.usageType and self.feature and self.usageType != self.feature:
            raise ValueError(f"usageType '{self.usageType}' and feature '{self.feature}' disagree; send one of them")
        return self


def openapi_body(model: type[BaseModel], *, description: str | None = None) -> dict[str, Any]:
    """`openapi_extra` documenting the JSON body of a route that reads it itself (the AI
    routes parse and validate their raw body, off FastAPI's body machinery): the model's
    JSON schema, its definitions inlined (a route's schema cannot carry `$defs`)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[-1]])
            # a discriminator's mapping names the $defs just inlined; oneOf says the same
            return {k: inline(v) for k, v in node.items() if k != "discriminator"}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    body: dict[str, Any] = {"required": True, "content": {"application/json": {"schema": inline(schema)}}}
    if description:
        body["description"] = description
    return {"requestBody": body}
