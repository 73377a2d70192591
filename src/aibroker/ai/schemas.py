"""Request bodies of the AI workspace: templates, conversations, A/B splits, feedback."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_PROMPT_CHARS = 100_000
MAX_MESSAGE_CHARS = 200_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TemplateCreate(_Strict):
    name: str = Field(min_length=1, max_length=200, description="The template's name.")
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description=(
        "The text, in Jinja2 syntax (`{{ name }}`, `{% if %}`, `{% for %}`, filters such as `upper`, `join`, "
        "`default`), rendered in a sandbox: no function calls, no attributes other than dict keys."))
    variables: list[Any] | dict[str, Any] | None = Field(default=None, description=(
        'Declared variables: names, or `{"name", "type"?: string|number|integer|boolean|array|object|any, '
        '"required"?, "default"?, "description"?}` (a default makes it optional). Omitted: every name the text uses, required.'))
    role: Literal["user", "system"] = Field(default="user", description=(
        "user: the rendered text is the user message (standing in for messages / input / prompt when absent); "
        "system: it goes before the given messages."))
    description: str | None = Field(default=None, max_length=2000, description="What the template is for.")
    category: str | None = Field(default=None, max_length=80, description="A free category, e.g. `support`.")
    public: bool = Field(default=False, description="A platform template every organization can use (the platform only).")


class TemplateUpdate(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200, description="New name.")
    prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_CHARS, description="New text (a new version).")
    variables: list[Any] | dict[str, Any] | None = Field(default=None, description="New declared variables (a new version).")
    role: Literal["user", "system"] | None = Field(default=None, description="New role (a new version).")
    description: str | None = Field(default=None, max_length=2000, description="New description.")
    category: str | None = Field(default=None, max_length=80, description="New category.")


class TemplateRender(_Strict):
    variables: dict[str, Any] = Field(default_factory=dict, description="The values of the template's variables.")
    version: int | None = Field(default=None, ge=1, le=2**31 - 1, description="A saved version (default: the current one).")


class ConversationCreate(_Strict):
    model: str | None = Field(default=None, max_length=200, description="The model (default: the router's choice for the feature `ai_conversation`).")
    title: str | None = Field(default=None, max_length=200, description="Title; generated from the first message when absent.")
    system_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS, description="Instructions sent first on every turn.")


class ConversationUpdate(_Strict):
    title: str | None = Field(default=None, min_length=1, max_length=200, description="New title.")
    model: str | None = Field(default=None, max_length=200, description="Model for the next turns.")
    system_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS, description="New instructions.")


class ConversationMessage(_Strict):
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="The user's message.")
    stream: bool = Field(default=False, description="Answer as Server-Sent Events (`delta` events, then `message`).")
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000, description="Cap of the reply's tokens.")
    temperature: float | None = Field(default=None, ge=0, le=2, description="Sampling temperature.")


class SplitArm(_Strict):
    model: str = Field(min_length=1, max_length=200, description="A chat model of the catalog, e.g. `mock/mock-chat`.")
    weight: int = Field(ge=0, le=100, description="Share of the traffic, in percent (the arms' weights sum to 100).")
    name: str | None = Field(default=None, min_length=1, max_length=80, description="The arm's label (default: the model id).")


class SplitCreate(_Strict):
    feature: str = Field(min_length=1, max_length=80, description="The feature whose traffic is split.")
    arms: list[SplitArm] = Field(min_length=2, max_length=10, description="Two to ten arms.")
    name: str | None = Field(default=None, max_length=200, description="A name for the experiment.")
    description: str | None = Field(default=None, max_length=2000, description="What is being compared.")
    active: bool = Field(default=True, description="Whether the split routes traffic now.")


class SplitUpdate(_Strict):
    arms: list[SplitArm] | None = Field(default=None, min_length=2, max_length=10, description="New arms.")
    name: str | None = Field(default=None, max_length=200, description="New name.")
    description: str | None = Field(default=None, max_length=2000, description="New description.")
    active: bool | None = Field(default=None, description="Pause (false) or resume (true) the split.")


class FeedbackCreate(_Strict):
    request_id: str = Field(min_length=1, max_length=60, description="The `x-request-id` of an answered request of the organization.")
    score: float = Field(ge=-1, le=1, description="-1 (bad) to 1 (good); thumbs down / up are -1 / 1.")
    comment: str | None = Field(default=None, max_length=2000, description="Free text.")
