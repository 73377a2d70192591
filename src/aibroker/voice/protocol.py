"""OpenAI Realtime's event protocol, as the broker speaks it to clients: the session's
configuration, client-event checks, server-event helpers, and beta-dialect names.

Clients speak GA events; a client that connected with `OpenAI-Beta: realtime=v1` gets the
beta names of the server events that were renamed (response.audio.delta, ...)."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from typing import Any

from aibroker.voice.audio import CLIENT_RATE

CLIENT_EVENTS = frozenset({
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
    "conversation.item.create", "conversation.item.retrieve", "conversation.item.truncate", "conversation.item.delete",
    "response.create", "response.cancel", "output_audio_buffer.clear",
})
# GA server event -> beta name (only the renamed ones).
BETA_NAMES = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "conversation.item.added": "conversation.item.created",
}
GA_NAMES = {beta: ga for ga, beta in BETA_NAMES.items()}
MAX_INSTRUCTIONS = 20_000
MAX_TOOLS = 64
VOICE_MAX = 64


class EventError(Exception):
    """A client event the broker refuses: answered with an `error` event; the session goes on."""

    def __init__(self, message: str, *, code: str = "invalid_event", param: str | None = None, error_type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message, self.code, self.param, self.error_type = message, code, param, error_type


def event_id() -> str:
    return "event_" + secrets.token_hex(10)


def error_event(message: str, *, code: str, error_type: str = "invalid_request_error", param: str | None = None,
                client_event_id: str | None = None) -> dict[str, Any]:
    return {"type": "error", "event_id": event_id(),
            "error": {"type": error_type, "code": code, "message": message, "param": param, "event_id": client_event_id}}


def is_pcm16(fmt: Any) -> bool:
    """pcm16 at 24 kHz in either dialect: beta "pcm16", GA {"type": "audio/pcm", "rate": 24000}."""
    if fmt == "pcm16":
        return True
    return isinstance(fmt, dict) and fmt.get("type") in ("audio/pcm", "pcm16") and fmt.get("rate", CLIENT_RATE) == CLIENT_RATE


def flat_tool(tool: Any) -> dict[str, Any]:
    """A function tool in Realtime's flat shape; chat's nested {"function": {...}} is accepted."""
    if not isinstance(tool, dict):
        raise EventError("each tool must be an object", param="tools")
    if isinstance(tool.get("function"), dict):
        tool = {"type": "function", **tool["function"]}
    name = tool.get("name")
    if tool.get("type", "function") != "function" or not isinstance(name, str) or not 0 < len(name) <= 64:
        raise EventError("a tool needs type 'function' and a name of 1-64 characters", param="tools")
    flat: dict[str, Any] = {"type": "function", "name": name}
    if isinstance(tool.get("description"), str):
        flat["description"] = tool["description"][:4000]
    if isinstance(tool.get("parameters"), dict):
        flat["parameters"] = tool["parameters"]
    return flat


@dataclass(slots=True)
class SessionConfig:
    """What the upstream is told about the session (set at init, changed by session.update)."""

    model: str  # the upstream model name
    voice: str | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    language: str | None = None
    turn_detection: dict[str, Any] | None = field(default_factory=lambda: {"type": "server_vad"})
    output_modalities: list[str] = field(default_factory=lambda: ["audio"])
    tool_choice: Any = "auto"

    def apply(self, session: Any) -> None:
        """A client's session.update (GA or beta shape). The model is the broker's to choose."""
        if not isinstance(session, dict):
            raise EventError("session.update needs a 'session' object", param="session")
        audio = session.get("audio") if isinstance(session.get("audio"), dict) else {}
        audio_in = audio.get("input") if isinstance(audio.get("input"), dict) else {}
        audio_out = audio.get("output") if isinstance(audio.get("output"), dict) else {}
        for fmt, where in ((session.get("input_audio_format"), "input_audio_format"),
                           (session.get("output_audio_format"), "output_audio_format"),
                           (audio_in.get("format"), "audio.input.format"), (audio_out.get("format"), "audio.output.format")):
            if fmt is not None and not is_pcm16(fmt):
                raise EventError(f"this broker serves audio as pcm16 (PCM 16-bit mono at 24 kHz) only, not {fmt!r}",
                                 code="unsupported_audio_format", param=where)
        voice = audio_out.get("voice", session.get("voice"))
        if voice is not None:
            if not isinstance(voice, str) or not 0 < len(voice) <= VOICE_MAX:
                raise EventError("'voice' must be a voice name", param="voice")
            self.voice = voice
        if "instructions" in session:
            text = session["instructions"]
            if not isinstance(text, str) or len(text) > MAX_INSTRUCTIONS:
                raise EventError(f"'instructions' must be a string of at most {MAX_INSTRUCTIONS} characters", param="instructions")
            self.instructions = text
        if "tools" in session:
            tools = session["tools"]
            if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
                raise EventError(f"'tools' must be a list of at most {MAX_TOOLS} tools", param="tools")
            self.tools = [flat_tool(t) for t in tools]
        if "tool_choice" in session:
            self.tool_choice = session["tool_choice"]
        detection = audio_in.get("turn_detection", session.get("turn_detection", ...))
        if detection is not ...:
            if detection is not None and not isinstance(detection, dict):
                raise EventError("'turn_detection' must be an object or null", param="turn_detection")
            self.turn_detection = detection
        modalities = session.get("output_modalities", session.get("modalities"))
        if modalities is not None:
            if not isinstance(modalities, list) or not set(modalities) <= {"audio", "text"} or not modalities:
                raise EventError("'output_modalities' must be ['audio'] or ['text']", param="output_modalities")
            self.output_modalities = ["text"] if modalities == ["text"] else ["audio"]

    def view(self, session_id: str, model_id: str) -> dict[str, Any]:
        """The session object of session.created / session.updated (GA shape)."""
        pcm = {"type": "audio/pcm", "rate": CLIENT_RATE}
        return {
            "id": session_id, "object": "realtime.session", "type": "realtime", "model": model_id,
            "output_modalities": self.output_modalities, "instructions": self.instructions or "",
            "tools": self.tools, "tool_choice": self.tool_choice,
            "audio": {"input": {"format": pcm, "turn_detection": self.turn_detection},
                      "output": {"format": pcm, "voice": self.voice}},
        }

    def upstream_session(self) -> dict[str, Any]:
        """OpenAI Realtime's GA session.update body for the upstream."""
        session: dict[str, Any] = {
            "type": "realtime", "output_modalities": self.output_modalities, "tools": self.tools,
            "tool_choice": self.tool_choice,
            "audio": {"input": {"format": {"type": "audio/pcm", "rate": CLIENT_RATE}, "turn_detection": self.turn_detection},
                      "output": {"format": {"type": "audio/pcm", "rate": CLIENT_RATE}}},
        }
        if self.instructions:
            session["instructions"] = self.instructions
        if self.voice:
            session["audio"]["output"]["voice"] = self.voice
        return session


def decode_audio(event: dict[str, Any], max_bytes: int) -> bytes:
    """The PCM16 bytes of an input_audio_buffer.append (EventError when they are not)."""
    data = event.get("audio")
    if not isinstance(data, str) or not data:
        raise EventError("input_audio_buffer.append needs 'audio': base64 PCM16", param="audio")
    try:
        pcm = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventError("'audio' is not valid base64", param="audio") from exc
    if len(pcm) % 2:
        raise EventError("'audio' is not PCM16: an odd number of bytes", code="unsupported_audio_format", param="audio")
    if len(pcm) > max_bytes:
        raise EventError(f"one append carries at most {max_bytes} bytes of audio", code="frame_too_large", param="audio")
    return pcm


def check_client_event(event: Any) -> dict[str, Any]:
    """A parsed client event, or EventError saying what is wrong with it."""
    if not isinstance(event, dict):
        raise EventError("a client event is a JSON object")
    kind = event.get("type")
    if not isinstance(kind, str):
        raise EventError("a client event needs a string 'type'", param="type")
    if kind not in CLIENT_EVENTS:
        raise EventError(f"unknown client event type '{kind[:80]}'", code="unknown_event", param="type")
    if kind == "conversation.item.create":
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") not in ("message", "function_call_output", "function_call"):
            raise EventError("conversation.item.create needs an 'item' of type message or function_call_output", param="item")
        if item["type"] == "function_call_output" and (not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str)):
            raise EventError("a function_call_output item needs a string 'call_id' and 'output'", param="item")
        if item["type"] == "message" and not isinstance(item.get("content"), list):
            raise EventError("a message item needs a 'content' list", param="item.content")
    if kind == "response.create" and event.get("response") is not None and not isinstance(event.get("response"), dict):
        raise EventError("'response' must be an object", param="response")
    return event


def message_text(item: dict[str, Any]) -> str:
    """The text parts of a conversation message item."""
    parts = item.get("content") if isinstance(item.get("content"), list) else []
    return " ".join(str(p.get("text") or p.get("transcript") or "") for p in parts if isinstance(p, dict)).strip()


def for_client(event: dict[str, Any], beta: bool) -> dict[str, Any]:
    """A server event in the client's dialect, with an event_id."""
    if "event_id" not in event:
        event["event_id"] = event_id()
    if beta and event.get("type") in BETA_NAMES:
        event = {**event, "type": BETA_NAMES[event["type"]]}
    return event
