"""Request shapes of the AI routes. Unknown fields pass through to the provider untouched."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request, plus aibroker's optional `feature`, `user_name` and `cache`."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, description="`provider/model` or a bare catalog name.")
    messages: list[Message] = Field(min_length=1, description="The conversation so far; at least one message.")
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice per request is supported.")
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    feature: str | None = Field(default=None, description="aibroker: the feature (usage type) this call serves.")


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None
    feature: str | None = None

    @field_validator("input")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if value == "" or value == []:
            raise ValueError("input must not be empty")
        return value


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
    maxTokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_feature(self) -> BrokerRequest:
        if self.usageType and self.feature and self.usageType != self.feature:
            raise ValueError(f"usageType '{self.usageType}' and feature '{self.feature}' disagree; send one of them")
        return self
