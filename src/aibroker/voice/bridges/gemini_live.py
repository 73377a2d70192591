"""The bridge to Gemini Live (BidiGenerateContent over WebSocket), translating both ways.

Client (OpenAI Realtime) -> Gemini: audio appends are resampled 24 -> 16 kHz (PyAV) and sent
as realtimeInput audio; commit is audioStreamEnd; text items are clientContent turns (sent
with turnComplete on response.create); function_call_output is a toolResponse.
Gemini -> client: modelTurn audio (24 kHz, as the client's) and text become one response's
output_audio / output_text deltas, output/input transcriptions the transcript events, a
toolCall a function_call response, `interrupted` a cancelled response (barge-in), and
turnComplete closes the response with the turn's last usageMetadata as its usage.
`goAway` and a dropped connection are survived with session resumption: the bridge
reconnects with the last `sessionResumptionUpdate` handle, unseen by the client. A
session.update reconnects too (Gemini takes its config once, in `setup`)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from aibroker.kit.ids import new_id
from aibroker.voice.audio import CLIENT_RATE, GEMINI_INPUT_RATE, Resampler
from aibroker.voice.bridges.base import Event, UpstreamClosed, websocket_url
from aibroker.voice.protocol import SessionConfig, message_text

log = logging.getLogger(__name__)

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_RESUMES = 5  # reconnections per session (goAway or drops) before the bridge gives up


def _get(data: dict[str, Any], camel: str) -> Any:
    """Gemini's server sends camelCase; proto JSON also allows snake_case."""
    if camel in data:
        return data[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return data.get(snake)


def usage_from_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """usageMetadata as OpenAI Realtime's response usage (by modality)."""
    def split(details: Any, total: int) -> tuple[int, int]:
        audio = sum(int(d.get("tokenCount") or 0) for d in details or [] if isinstance(d, dict) and d.get("modality") == "AUDIO")
        return max(total - audio, 0), min(audio, total)

    prompt = int(_get(meta, "promptTokenCount") or 0) + int(_get(meta, "toolUsePromptTokenCount") or 0)
    response = int(_get(meta, "responseTokenCount") or _get(meta, "candidatesTokenCount") or 0) + int(_get(meta, "thoughtsTokenCount") or 0)
    text_in, audio_in = split(_get(meta, "promptTokensDetails"), prompt)
    out_details = _get(meta, "responseTokensDetails") or _get(meta, "candidatesTokensDetails")
    text_out, audio_out = split(out_details, response)
    cached = min(int(_get(meta, "cachedContentTokenCount") or 0), text_in)
    return {"total_tokens": prompt + response, "input_tokens": prompt, "output_tokens": response,
            "input_token_details": {"text_tokens": text_in, "audio_tokens": audio_in, "cached_tokens": cached},
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out}}


class GeminiLiveBridge:
    def __init__(self, base_url: str, api_key: str | None, config: SessionConfig, *, connect_timeout: float = 10.0) -> None:
        self.url = websocket_url(base_url, PATH)
        self.api_key = api_key
        self.config = config
        self.connect_timeout = connect_timeout
        self.ws: ClientConnection | None = None
        self.handle: str | None = None  # session resumption
        self.resumes = 0
        self.resampler = Resampler(CLIENT_RATE, GEMINI_INPUT_RATE)
        self.turns: list[dict[str, Any]] = []  # text turns waiting for response.create
        self.tool_names: dict[str, str] = {}  # call id -> function name (toolResponse needs it)
        self.after_tool = False  # Gemini continues on its own after a toolResponse
        self.response: dict[str, Any] | None = None  # the response being relayed
        self.usage: dict[str, Any] | None = None  # the turn's last usageMetadata
        self.input_transcript = ""
        self.ready = asyncio.Event()
        self.closed = False

    # -- connection -------------------------------------------------------------------

    def _setup(self) -> dict[str, Any]:
        config = self.config
        generation: dict[str, Any] = {"responseModalities": ["TEXT" if config.output_modalities == ["text"] else "AUDIO"]}
        speech: dict[str, Any] = {}
        if config.voice:
            speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": config.voice}}
        if config.language:
            speech["languageCode"] = config.language
        if speech:
            generation["speechConfig"] = speech
        setup: dict[str, Any] = {
            "model": config.model if config.model.startswith("models/") else "models/" + config.model,
            "generationConfig": generation,
            "inputAudioTranscription": {}, "outputAudioTranscription": {},
            "sessionResumption": {"handle": self.handle} if self.handle else {},
            "realtimeInputConfig": {"automaticActivityDetection": {"disabled": config.turn_detection is None}},
        }
        if config.instructions:
            setup["systemInstruction"] = {"parts": [{"text": config.instructions}]}
        if config.tools:
            setup["tools"] = [{"functionDeclarations": [
                {k: v for k, v in (("name", t["name"]), ("description", t.get("description")), ("parameters", t.get("parameters"))) if v}
                for t in config.tools]}]
        return {"setup": setup}

    async def connect(self) -> None:
        self.ready.clear()
        headers = {"x-goog-api-key": self.api_key} if self.api_key else {}
        try:
            self.ws = await connect(self.url, additional_headers=headers, max_size=MAX_MESSAGE_BYTES,
                                    open_timeout=self.connect_timeout, compression=None)
            await self.ws.send(json.dumps(self._setup()))
            first = json.loads(await asyncio.wait_for(self.ws.recv(), self.connect_timeout))
        except (OSError, TimeoutError, ValueError, websockets.exceptions.WebSocketException) as exc:
            raise UpstreamClosed(f"Gemini Live refused the session ({type(exc).__name__})") from exc
        if not isinstance(first, dict) or _get(first, "setupComplete") is None:
            raise UpstreamClosed("Gemini Live did not complete the setup")
        self.ready.set()

    async def _reconnect(self) -> None:
        """Resume on a new connection (goAway, a drop, a config change)."""
        self.resumes += 1
        if self.resumes > MAX_RESUMES:
            raise UpstreamClosed("Gemini Live kept closing the session")
        old, self.ws = self.ws, None
        if old is not None:
            await old.close()
        await self.connect()

    async def _send(self, message: dict[str, Any]) -> None:
        await asyncio.wait_for(self.ready.wait(), self.connect_timeout)
        assert self.ws is not None
        try:
            await self.ws.send(orjson.dumps(message).decode())
        except websockets.exceptions.ConnectionClosed:
            # The reader resumes the session; this message is lost with the old connection.
            log.info("a message to Gemini Live was lost with a closing connection")

    # -- client -> Gemini -------------------------------------------------------------

    async def send(self, event: Event) -> None:
        kind = event["type"]
        if kind == "input_audio_buffer.append":
            pcm = self.resampler.feed(base64.b64decode(event["audio"]))
            if pcm:
                await self._send({"realtimeInput": {"audio": {"data": base64.b64encode(pcm).decode(), "mimeType": f"audio/pcm;rate={GEMINI_INPUT_RATE}"}}})
        elif kind == "input_audio_buffer.commit":
            await self._send({"realtimeInput": {"audioStreamEnd": True}})
        elif kind == "conversation.item.create":
            item = event["item"]
            if item["type"] == "function_call_output":
                call_id = item["call_id"]
                try:
                    output = json.loads(item["output"])
                except ValueError:
                    output = item["output"]
                response = output if isinstance(output, dict) else {"output": output}
                await self._send({"toolResponse": {"functionResponses": [
                    {"id": call_id, "name": self.tool_names.get(call_id, ""), "response": response}]}})
                self.after_tool = True
            elif item["type"] == "message":
                role = "model" if item.get("role") == "assistant" else "user"
                self.turns.append({"role": role, "parts": [{"text": message_text(item)}]})
        elif kind == "response.create":
            if self.after_tool and not self.turns:
                self.after_tool = False  # Gemini answers the tool result by itself
                return
            self.after_tool = False
            turns, self.turns = self.turns, []
            await self._send({"clientContent": {"turns": turns, "turnComplete": True}})

    async def update(self, config: SessionConfig) -> None:
        self.config = config
        await self._reconnect()  # setup happens once per connection
        self.resumes -= 1  # a config change is not a fault

    # -- Gemini -> client -------------------------------------------------------------

    def _open_response(self) -> list[Event]:
        if self.response is not None:
            return []
        rid, item_id = new_id("resp"), new_id("item")
        audio = self.config.output_modalities != ["text"]
        self.response = {"id": rid, "item_id": item_id, "audio": audio, "transcript": "", "text": "", "calls": []}
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        return [
            {"type": "response.created", "response": {"id": rid, "object": "realtime.response", "status": "in_progress", "output": []}},
            {"type": "response.output_item.added", "response_id": rid, "output_index": 0, "item": item},
            {"type": "response.content_part.added", "response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0, "part": part},
        ]

    def _close_response(self, status: str) -> list[Event]:
        if self.response is None:
            return []
        r, self.response = self.response, None
        base = {"response_id": r["id"], "item_id": r["item_id"], "output_index": 0, "content_index": 0}
        events: list[Event] = []
        if r["audio"]:
            events += [{"type": "response.output_audio.done", **base},
                       {"type": "response.output_audio_transcript.done", **base, "transcript": r["transcript"]}]
            part = {"type": "audio", "transcript": r["transcript"]}
        else:
            events.append({"type": "response.output_text.done", **base, "text": r["text"]})
            part = {"type": "text", "text": r["text"]}
        item = {"id": r["item_id"], "type": "message", "role": "assistant", "status": "completed" if status == "completed" else "incomplete",
                "content": [{**part, "type": "output_audio" if r["audio"] else "output_text"}]}
        events += [{"type": "response.content_part.done", **base, "part": part},
                   {"type": "response.output_item.done", "response_id": r["id"], "output_index": 0, "item": item}]
        usage, self.usage = (usage_from_metadata(self.usage) if self.usage else None), None
        response: dict[str, Any] = {"id": r["id"], "object": "realtime.response", "status": status, "output": [item, *r["calls"]], "usage": usage}
        if status == "cancelled":
            response["status_details"] = {"type": "cancelled", "reason": "turn_detected"}
        events.append({"type": "response.done", "response": response})
        return events

    def _tool_calls(self, calls: list[Any]) -> list[Event]:
        events = self._open_response()
        assert self.response is not None
        r = self.response
        for index, call in enumerate(c for c in calls if isinstance(c, dict)):
            call_id, name = str(call.get("id") or new_id("call")), str(call.get("name") or "")
            self.tool_names[call_id] = name
            arguments = json.dumps(call.get("args") or {})
            item = {"id": new_id("item"), "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments, "status": "completed"}
            base = {"response_id": r["id"], "item_id": item["id"], "output_index": index + 1, "call_id": call_id}
            events += [{"type": "response.output_item.added", "response_id": r["id"], "output_index": index + 1, "item": {**item, "arguments": ""}},
                       {"type": "response.function_call_arguments.done", **base, "name": name, "arguments": arguments},
                       {"type": "response.output_item.done", "response_id": r["id"], "output_index": index + 1, "item": item}]
            r["calls"].append(item)
        return events + self._close_response("completed")  # the client answers with the outputs

    def translate(self, message: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        usage = _get(message, "usageMetadata")
        if isinstance(usage, dict):
            self.usage = usage  # per turn; the last one seen wins (dedupe repeated snapshots)
        update = _get(message, "sessionResumptionUpdate")
        if isinstance(update, dict) and _get(update, "resumable") is not False and _get(update, "newHandle"):
            self.handle = str(_get(update, "newHandle"))
        tool_call = _get(message, "toolCall")
        if isinstance(tool_call, dict):
            events += self._tool_calls(_get(tool_call, "functionCalls") or [])
        content = _get(message, "serverContent")
        if isinstance(content, dict):
            events += self._content(content)
        return events

    def _content(self, content: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        heard = _get(content, "inputTranscription")
        if isinstance(heard, dict) and heard.get("text"):
            self.input_transcript += str(heard["text"])
        if _get(content, "interrupted"):
            events += self._close_response("cancelled")
            events.append({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": new_id("item")})
        turn = _get(content, "modelTurn")
        for part in (turn or {}).get("parts") or [] if isinstance(turn, dict) else []:
            if not isinstance(part, dict):
                continue
            inline = _get(part, "inlineData")
            if isinstance(inline, dict) and inline.get("data"):
                events += self._open_response()
                events.append(self._delta("response.output_audio.delta", inline["data"]))
            elif isinstance(part.get("text"), str) and not part.get("thought"):
                events += self._open_response()
                assert self.response is not None
                self.response["text"] += part["text"]
                name = "response.output_text.delta" if not self.response["audio"] else "response.output_audio_transcript.delta"
                if self.response["audio"]:
                    self.response["transcript"] += part["text"]
                events.append(self._delta(name, part["text"]))
        spoken = _get(content, "outputTranscription")
        if isinstance(spoken, dict) and spoken.get("text"):
            events += self._open_response()
            assert self.response is not None
            self.response["transcript"] += str(spoken["text"])
            events.append(self._delta("response.output_audio_transcript.delta", str(spoken["text"])))
        if _get(content, "turnComplete"):
            if self.input_transcript:
                events.append({"type": "conversation.item.input_audio_transcription.completed", "item_id": new_id("item"),
                               "content_index": 0, "transcript": self.input_transcript.strip()})
                self.input_transcript = ""
            if self.response is None and self.usage is not None:
                events += self._open_response()  # a turn with usage but no output still bills
            events += self._close_response("completed")
        return events

    def _delta(self, kind: str, delta: str) -> Event:
        assert self.response is not None
        return {"type": kind, "response_id": self.response["id"], "item_id": self.response["item_id"],
                "output_index": 0, "content_index": 0, "delta": delta}

    async def events(self) -> AsyncIterator[Event]:
        while not self.closed:
            await self.ready.wait()
            ws = self.ws
            assert ws is not None
            go_away = False
            try:
                async for raw in ws:
                    try:
                        message = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(message, dict):
                        continue
                    if _get(message, "goAway") is not None:
                        go_away = True
                    for event in self.translate(message):
                        yield event
                    if go_away:
                        break
            except websockets.exceptions.ConnectionClosed:
                pass
            if self.closed:
                break
            if self.ws is not ws:
                continue  # replaced by update(): read the new connection
            if self.handle is None:
                raise UpstreamClosed("the Gemini Live connection dropped and cannot be resumed")
            await self._reconnect()
        raise UpstreamClosed("the Gemini Live session is closed")

    async def close(self) -> None:
        self.closed = True
        if self.ws is not None:
            await self.ws.close()
