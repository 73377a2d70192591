"""Request and response types of the voice routes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aibroker.voice.protocol import MAX_INSTRUCTIONS, MAX_TOOLS, EventError, flat_tool, is_pcm16

SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,40}$"


class VoiceInit(BaseModel):
    """Opens a voice session. Every field is optional."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, min_length=1, max_length=200, description=(
        "A realtime model (`mock-realtime`, `openai/gpt-realtime`, `gemini/gemini-live-2.5-flash-preview`, ...). "
        "Default: the routing matrix's feature `voice_agent`, else AIBROKER_VOICE_DEFAULT_MODEL."))
    voice: str | None = Field(default=None, min_length=1, max_length=64, description="The upstream's voice name (alloy, marin, Puck, ...).")
    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS, description=(
        "The system instructions. Default: the organization's AI context prompt, when it configured one."))
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_TOOLS, description=(
        "Function tools, Realtime's flat shape {type: function, name, description, parameters}; their calls go to the client."))
    language: str | None = Field(default=None, min_length=2, max_length=16, description="A BCP-47 language code (Gemini's speech language).")
    input_audio_format: str | dict[str, Any] | None = Field(default=None, description="`pcm16` (PCM 16-bit mono 24 kHz), the only format served.")
    output_audio_format: str | dict[str, Any] | None = Field(default=None, description="`pcm16`, the only format served.")
    feature: str | None = Field(default=None, max_length=80, description="The feature the session serves (default `voice_agent`).")

    @field_validator("input_audio_format", "output_audio_format")
    @classmethod
    def _pcm16(cls, value: Any) -> Any:
        if value is not None and not is_pcm16(value):
            raise ValueError("only pcm16 (PCM 16-bit mono at 24 kHz) is served")
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return [flat_tool(t) for t in value]
        except EventError as exc:
            raise ValueError(exc.message) from exc


class VoiceInitAnswer(BaseModel):
    session_id: str = Field(description="The session's id (the `sessionId` of the path).")
    ws_url: str = Field(description="Where to connect: the WebSocket URL, with the token as `?token=`.")
    token: str = Field(description="The short-lived session token (once, for this session only).")
    expires_at: dt.datetime = Field(description="When the token stops opening the session.")
    model: str = Field(description="The model the session runs (catalog id).")


class TranscriptLine(BaseModel):
    role: str = Field(description="`user` or `assistant`.")
    text: str


class VoiceSessionView(BaseModel):
    id: str
    status: str = Field(description="pending | active | closed | failed | expired (never connected) | interrupted (its broker process died).")
    model: str
    voice: str | None = None
    feature: str | None = None
    user_id: str | None = None
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    duration_ms: int = Field(description="Connected time, in milliseconds.")
    responses: int = Field(description="Upstream responses billed.")
    input_tokens: int
    output_tokens: int
    input_audio_tokens: int
    output_audio_tokens: int
    cost_micros: int = Field(description="What the session was billed, in micro-units.")
    close_code: int | None = None
    close_reason: str | None = None
    transcript: list[TranscriptLine] = Field(default_factory=list)


class VoiceSessionList(BaseModel):
    data: list[VoiceSessionView]
    has_more: bool
