"""`mock-realtime`: a deterministic realtime model in the broker process (no network), so a
voice session can be demonstrated with no provider key.

It speaks OpenAI Realtime GA events. Server VAD is emulated by size: every second of
appended audio is a user turn (speech_started, speech_stopped, committed, a fixed input
transcript, then a response); `input_audio_buffer.commit` and `response.create` answer at
once. A response is half a second of a 440 Hz tone (PCM16 24 kHz) with a fixed transcript,
or text when the session's output is text. With tools, the first response calls the first
tool with {"query": "mock"}; the one after its output speaks that output. Usage follows
OpenAI's rates: 1 audio token per 100 ms heard, 1 per 50 ms spoken, text ~4 bytes a token."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator
from typing import Any

from aibroker.kit.ids import new_id
from aibroker.voice.audio import pcm_ms, tone
from aibroker.voice.bridges.base import Event, UpstreamClosed
from aibroker.voice.protocol import SessionConfig, message_text

TRANSCRIPT = "Hello from the aibroker mock realtime model."
USER_TRANSCRIPT = "Hello, this is the caller speaking."
VAD_MS = 1000.0
TONE_SECONDS = 0.5
CHUNK_SECONDS = 0.1
TOOL_ARGUMENTS = json.dumps({"query": "mock"})


def _text_tokens(text: str) -> int:
    return max(1, math.ceil(len(text.encode()) / 4)) if text else 0


class MockRealtimeBridge:
    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.buffer_ms = 0.0
        self.speaking = False
        self.history_tokens = 0
        self.tool_output: str | None = None
        self.awaiting_tool: str | None = None
        self.closed = False
        self.pending_heard = 0.0  # ms of committed audio the next response bills

    async def connect(self) -> None:
        return None

    async def update(self, config: SessionConfig) -> None:
        self.config = config

    def _emit(self, event: Event) -> None:
        self.queue.put_nowait(event)

    async def send(self, event: Event) -> None:
        if self.closed:
            raise UpstreamClosed("the mock session is closed")
        kind = event["type"]
        if kind == "input_audio_buffer.append":
            self._append(len(base64.b64decode(event["audio"])))
        elif kind == "input_audio_buffer.commit":
            if self.buffer_ms <= 0:
                self._emit({"type": "error", "error": {"type": "invalid_request_error", "code": "input_audio_buffer_commit_empty",
                                                        "message": "the input audio buffer is empty", "event_id": event.get("event_id")}})
                return
            self._commit()
            if self.config.turn_detection is not None:
                self._respond()
        elif kind == "input_audio_buffer.clear":
            self.buffer_ms, self.speaking = 0.0, False
            self._emit({"type": "input_audio_buffer.cleared"})
        elif kind == "conversation.item.create":
            self._item(event["item"])
        elif kind == "response.create":
            self._respond()
        elif kind == "conversation.item.delete":
            self._emit({"type": "conversation.item.deleted", "item_id": event.get("item_id")})
        elif kind == "conversation.item.truncate":
            self._emit({"type": "conversation.item.truncated", "item_id": event.get("item_id"),
                        "content_index": event.get("content_index", 0), "audio_end_ms": event.get("audio_end_ms", 0)})
        # response.cancel, output_audio_buffer.clear: the mock answers at once, nothing runs to cancel

    def _append(self, nbytes: int) -> None:
        if not self.speaking and self.config.turn_detection is not None:
            self.speaking = True
            self._emit({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": new_id("item")})
        self.buffer_ms += pcm_ms(nbytes)
        if self.config.turn_detection is not None and self.buffer_ms >= VAD_MS:
            self._emit({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": int(self.buffer_ms), "item_id": new_id("item")})
            self._commit()
            self._respond()

    def _commit(self) -> None:
        item_id = new_id("item")
        heard = self.buffer_ms
        self.buffer_ms, self.speaking = 0.0, False
        self.history_tokens += math.ceil(heard / 100)
        self._emit({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": None})
        item = {"id": item_id, "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": USER_TRANSCRIPT}]}
        self._emit({"type": "conversation.item.added", "item": item, "previous_item_id": None})
        self._emit({"type": "conversation.item.done", "item": item, "previous_item_id": None})
        self._emit({"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                    "content_index": 0, "transcript": USER_TRANSCRIPT})
        self.pending_heard += heard

    def _item(self, item: dict[str, Any]) -> None:
        item = {"id": item.get("id") or new_id("item"), **item, "status": "completed"}
        if item["type"] == "function_call_output":
            self.tool_output = item.get("output")
            self.awaiting_tool = None
        else:
            self.history_tokens += _text_tokens(message_text(item))
        self._emit({"type": "conversation.item.added", "item": item, "previous_item_id": None})
        self._emit({"type": "conversation.item.done", "item": item, "previous_item_id": None})

    def _usage(self, output_text: int, output_audio: int) -> dict[str, Any]:
        heard = self.pending_heard
        self.pending_heard = 0.0
        audio_in = math.ceil(heard / 100)
        text_in = 16 + _text_tokens(self.config.instructions or "") + self.history_tokens + 8 * len(self.config.tools)
        return {"total_tokens": text_in + audio_in + output_text + output_audio, "input_tokens": text_in + audio_in,
                "output_tokens": output_text + output_audio,
                "input_token_details": {"text_tokens": text_in, "audio_tokens": audio_in, "cached_tokens": 0},
                "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio}}

    def _respond(self) -> None:
        response_id = new_id("resp")
        self._emit({"type": "response.created", "response": {"id": response_id, "object": "realtime.response", "status": "in_progress", "output": []}})
        if self.config.tools and self.tool_output is None and self.awaiting_tool is None:
            self._call_tool(response_id)
            return
        text = TRANSCRIPT if self.tool_output is None else f"The tool answered: {self.tool_output[:200]}"
        self.tool_output = None
        item_id = new_id("item")
        audio = "audio" in self.config.output_modalities
        base = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        self._emit({"type": "response.output_item.added", "response_id": response_id, "output_index": 0, "item": item})
        self._emit({"type": "conversation.item.added", "item": item, "previous_item_id": None})
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        self._emit({"type": "response.content_part.added", **base, "part": part})
        words = text.split(" ")
        if audio:
            pcm = tone(TONE_SECONDS)
            step = int(CHUNK_SECONDS * 24_000) * 2
            for i in range(0, len(pcm), step):
                self._emit({"type": "response.output_audio.delta", **base, "delta": base64.b64encode(pcm[i:i + step]).decode()})
            for i, word in enumerate(words):
                self._emit({"type": "response.output_audio_transcript.delta", **base, "delta": word if i == 0 else " " + word})
            self._emit({"type": "response.output_audio.done", **base})
            self._emit({"type": "response.output_audio_transcript.done", **base, "transcript": text})
            done_part = {"type": "audio", "transcript": text}
            output_audio = math.ceil(TONE_SECONDS * 1000 / 50)
        else:
            for i, word in enumerate(words):
                self._emit({"type": "response.output_text.delta", **base, "delta": word if i == 0 else " " + word})
            self._emit({"type": "response.output_text.done", **base, "text": text})
            done_part = {"type": "text", "text": text}
            output_audio = 0
        self._emit({"type": "response.content_part.done", **base, "part": done_part})
        done_item = {**item, "status": "completed", "content": [{**done_part, "type": "output_audio" if audio else "output_text"}]}
        self._emit({"type": "response.output_item.done", "response_id": response_id, "output_index": 0, "item": done_item})
        self._emit({"type": "conversation.item.done", "item": done_item, "previous_item_id": None})
        usage = self._usage(_text_tokens(text), output_audio)
        self.history_tokens += _text_tokens(text)
        self._emit({"type": "response.done", "response": {"id": response_id, "object": "realtime.response", "status": "completed",
                                                          "output": [done_item], "usage": usage}})

    def _call_tool(self, response_id: str) -> None:
        tool = self.config.tools[0]["name"]
        item_id, call_id = new_id("item"), new_id("call")
        item = {"id": item_id, "type": "function_call", "call_id": call_id, "name": tool, "arguments": "", "status": "in_progress"}
        self._emit({"type": "response.output_item.added", "response_id": response_id, "output_index": 0, "item": item})
        base = {"response_id": response_id, "item_id": item_id, "output_index": 0, "call_id": call_id}
        self._emit({"type": "response.function_call_arguments.delta", **base, "delta": TOOL_ARGUMENTS})
        self._emit({"type": "response.function_call_arguments.done", **base, "name": tool, "arguments": TOOL_ARGUMENTS})
        done_item = {**item, "arguments": TOOL_ARGUMENTS, "status": "completed"}
        self._emit({"type": "response.output_item.done", "response_id": response_id, "output_index": 0, "item": done_item})
        self.awaiting_tool = call_id
        self._emit({"type": "response.done", "response": {"id": response_id, "object": "realtime.response", "status": "completed",
                                                          "output": [done_item], "usage": self._usage(_text_tokens(TOOL_ARGUMENTS), 0)}})

    async def events(self) -> AsyncIterator[Event]:
        while True:
            event = await self.queue.get()
            if event is None:
                raise UpstreamClosed("the mock session is closed")
            yield event

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)
