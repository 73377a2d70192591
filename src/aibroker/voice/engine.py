"""The WebSocket engine: one voice session between a client (OpenAI Realtime events) and its
upstream bridge, metered from the wallet.

Three tasks run per session: the client pump (checks every client event; a bad one gets an
`error` event and the session goes on), the upstream pump (relays server events, bills each
`response.done`, keeps the transcript) and the ticker (holds ahead of use, heartbeat, the
session-length limit). The first to end decides the close code; then whatever the response
in flight used is billed, the holds go back, and the session row gets its totals."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketState

from aibroker.catalog.registry import ModelEntry
from aibroker.gateway.context import CallContext
from aibroker.gateway.hooks import Ticket
from aibroker.kit.clock import utcnow
from aibroker.providers.base import Usage
from aibroker.voice import pricing, protocol, repository
from aibroker.voice.audio import pcm_ms
from aibroker.voice.bridges import Bridge, UpstreamClosed, open_bridge
from aibroker.voice.metering import Meter, OutOfBalance
from aibroker.voice.protocol import EventError, SessionConfig, error_event
from aibroker.voice.service import VoiceService

log = logging.getLogger(__name__)

MAX_TRANSCRIPT_LINES = 500
MAX_TRANSCRIPT_CHARS = 4000  # per line
TICK_SECONDS = 0.5

CLOSE_NORMAL, CLOSE_ERROR = 1000, 1011
CLOSE_BALANCE, CLOSE_TOO_LONG = 4402, 4408


@dataclass(slots=True)
class Outcome:
    code: int
    reason: str
    status: str  # the session's final status


class VoiceEngine:
    def __init__(self, services: Any, ws: WebSocket, *, ctx: CallContext, model: ModelEntry, config: SessionConfig,
                 beta: bool, max_seconds: int, ticket: Ticket | None) -> None:
        self.services = services
        self.voice = VoiceService(services)
        self.ws = ws
        self.ctx = ctx
        self.model = model
        self.config = config
        self.beta = beta
        self.max_seconds = max_seconds
        self.ticket = ticket
        self.session_id = ctx.request_id
        self.organization_id = ctx.principal.organization_id
        self.meter = Meter(services.gateway, ctx, model, self.voice.increment(ctx, model))
        self.bridge: Bridge | None = None
        self._billing: asyncio.Future[int] | None = None  # the response being settled
        self.transcript: list[dict[str, str]] = []
        self.started = time.monotonic()
        self.client_gone = False
        self._send_lock = asyncio.Lock()
        self.max_frame = services.settings.voice.max_frame_bytes

    # -- sending ------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        if self.client_gone:
            return
        text = orjson.dumps(protocol.for_client(event, self.beta)).decode()
        async with self._send_lock:
            try:
                await self.ws.send_text(text)
            except Exception:  # noqa: BLE001 - the client left; the pumps notice it
                self.client_gone = True

    async def warn_balance(self, exc: OutOfBalance) -> Outcome:
        await self.send(error_event(
            f"Warning: {exc.refusal.message} The wallet cannot hold the session's next increment; the session closes now.",
            code="insufficient_balance", error_type="insufficient_balance"))
        return Outcome(CLOSE_BALANCE, "insufficient_balance", repository.CLOSED)

    # -- the session --------------------------------------------------------------------

    async def run(self) -> None:
        outcome = Outcome(CLOSE_ERROR, "internal_error", repository.FAILED)
        try:
            outcome = await self._serve()
        except Exception:
            log.exception("voice session failed")
        finally:
            await self._finish(outcome)

    async def _serve(self) -> Outcome:
        try:
            await self.meter.start()
        except OutOfBalance as exc:
            return await self.warn_balance(exc)
        self.bridge = open_bridge(self.services, self.model, self.config, self.ctx.byok_keys.get(self.model.provider))
        try:
            await self.bridge.connect()
        except UpstreamClosed as exc:
            await self.send(error_event(f"The upstream realtime service is unavailable: {exc.reason}.",
                                        code="upstream_unavailable", error_type="server_error"))
            return Outcome(CLOSE_ERROR, "upstream_unavailable", repository.FAILED)
        await self.send({"type": "session.created", "session": self.config.view(self.session_id, self.model.id)})
        tasks = [asyncio.create_task(self._client_pump()), asyncio.create_task(self._upstream_pump()),
                 asyncio.create_task(self._ticker())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return next(iter(done)).result()

    async def _finish(self, outcome: Outcome) -> None:
        if self.bridge is not None:
            try:
                await self.bridge.close()
            except Exception:  # noqa: BLE001 - closing a dead upstream
                log.debug("closing the upstream failed", exc_info=True)
        if self._billing is not None:
            try:
                await self._billing  # its settlement first, so the end bills only what is left
            except OutOfBalance:
                pass  # the session is ending anyway
            except Exception:
                log.exception("billing a voice response failed")
        try:
            await self.meter.finish()
        except Exception:
            log.exception("billing the end of a voice session failed")
            self.meter.release()
        totals = self.meter.totals
        usage = Usage(totals.input_tokens, totals.output_tokens)
        if self.ticket is not None:
            try:
                await self.services.gateway.admission.settle(self.ctx, self.ticket, self.model, usage)
            except Exception:  # noqa: BLE001 - counters are best effort at the end
                log.warning("could not settle a voice session's admission", exc_info=True)
        await self._save(status=outcome.status, ended_at=utcnow(), close_code=outcome.code, close_reason=outcome.reason)
        if not self.client_gone and self.ws.application_state == WebSocketState.CONNECTED:
            try:
                await self.ws.close(outcome.code, outcome.reason)
            except Exception:  # noqa: BLE001 - already gone
                pass

    async def _save(self, **values: Any) -> None:
        totals = self.meter.totals
        values.update(
            duration_ms=int((time.monotonic() - self.started) * 1000), responses=totals.responses,
            input_tokens=totals.input_tokens, output_tokens=totals.output_tokens,
            input_audio_tokens=totals.input_audio_tokens, output_audio_tokens=totals.output_audio_tokens,
            cost_micros=totals.cost_micros, transcript=list(self.transcript), heartbeat_at=utcnow(),
        )
        try:
            async with self.services.db.sessions() as session:
                await repository.save_progress(session, self.organization_id, self.session_id, values)
                await session.commit()
        except Exception:  # noqa: BLE001 - the next heartbeat (or the end) writes it again
            log.warning("could not save a voice session's progress", exc_info=True)

    # -- client -> upstream -------------------------------------------------------------

    async def _client_pump(self) -> Outcome:
        assert self.bridge is not None
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self.client_gone = True
                return Outcome(int(message.get("code") or CLOSE_NORMAL), "client_closed", repository.CLOSED)
            text = message.get("text")
            client_event_id = None
            try:
                if text is None:
                    raise EventError("client events are JSON text frames, not binary", code="binary_frame")
                if len(text) > self.max_frame:
                    raise EventError(f"a client event is at most {self.max_frame} bytes", code="frame_too_large")
                try:
                    event = orjson.loads(text)
                except orjson.JSONDecodeError as exc:
                    raise EventError("the event is not valid JSON") from exc
                client_event_id = event.get("event_id") if isinstance(event, dict) else None
                event = protocol.check_client_event(event)
                await self._forward(event)
            except EventError as exc:
                await self.send(error_event(exc.message, code=exc.code, error_type=exc.error_type, param=exc.param,
                                            client_event_id=client_event_id if isinstance(client_event_id, str) else None))

    async def _forward(self, event: dict[str, Any]) -> None:
        assert self.bridge is not None
        kind = event["type"]
        if kind == "session.update":
            self.config.apply(event.get("session"))
            await self.bridge.update(self.config)
            await self.send({"type": "session.updated", "session": self.config.view(self.session_id, self.model.id)})
            return
        if kind == "input_audio_buffer.append":
            pcm = protocol.decode_audio(event, self.max_frame)
            self.meter.heard_ms += pcm_ms(len(pcm))
        elif kind == "conversation.item.create" and event["item"]["type"] == "message":
            self._line(event["item"].get("role") or "user", protocol.message_text(event["item"]))
        await self.bridge.send(event)

    # -- upstream -> client -------------------------------------------------------------

    async def _upstream_pump(self) -> Outcome:
        assert self.bridge is not None
        try:
            async for event in self.bridge.events():
                kind = event.get("type")
                if kind == "response.done":
                    # Billed first, as on HTTP: the answer's end leaves only after its settlement
                    # committed, so a process killed right after cannot have given it away unbilled.
                    try:
                        await self._bill(event.get("response") or {})
                    except OutOfBalance:
                        await self.send(event)  # billed; it is the next increment that failed
                        raise
                    await self.send(event)
                    continue
                self._observe(kind, event)
                await self.send(event)
        except UpstreamClosed as exc:
            await self.send(error_event(f"The upstream realtime session ended: {exc.reason}.",
                                        code="upstream_disconnected", error_type="server_error"))
            return Outcome(CLOSE_ERROR, "upstream_disconnected", repository.FAILED)
        except OutOfBalance as exc:
            return await self.warn_balance(exc)
        return Outcome(CLOSE_ERROR, "upstream_disconnected", repository.FAILED)

    def _observe(self, kind: Any, event: dict[str, Any]) -> None:
        meter = self.meter
        if kind == "response.created":
            meter.in_response = True
        elif kind == "response.output_audio.delta" and isinstance(event.get("delta"), str):
            meter.in_response = True
            meter.spoken_ms += pcm_ms(len(event["delta"]) * 3 // 4)
        elif kind in ("response.output_audio_transcript.delta", "response.output_text.delta") and isinstance(event.get("delta"), str):
            meter.spoken_text_tokens += math.ceil(len(event["delta"].encode()) / 4)
        elif kind == "response.output_audio_transcript.done":
            self._line("assistant", event.get("transcript"))
        elif kind == "response.output_text.done":
            self._line("assistant", event.get("text"))
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._line("user", event.get("transcript"))

    async def _bill(self, response: dict[str, Any]) -> None:
        if response.get("usage") is None:
            # Usage comes later (Gemini reports a turn's usage at turnComplete, after the tool
            # call's response): nothing billed now; what was used stays on the meter.
            return
        usage = pricing.usage_from_event(response.get("usage"))
        if usage.input_tokens + usage.output_tokens == 0:  # no usage reported: what was heard and spoken
            usage = pricing.audio_usage(self.meter.heard_ms, self.meter.spoken_ms, self.meter.spoken_text_tokens)
        status = "success" if response.get("status", "completed") == "completed" else "partial"
        # Shielded: a client leaving now must not cut the bill (and the session totals) in half.
        self._billing = asyncio.ensure_future(self.meter.bill(usage, status=status))
        await asyncio.shield(self._billing)

    def _line(self, role: str, text: Any) -> None:
        if isinstance(text, str) and text.strip() and len(self.transcript) < MAX_TRANSCRIPT_LINES:
            self.transcript.append({"role": role if role in ("user", "assistant") else "user", "text": text.strip()[:MAX_TRANSCRIPT_CHARS]})

    # -- upkeep -------------------------------------------------------------------------

    async def _ticker(self) -> Outcome:
        every = self.services.settings.voice.heartbeat_seconds
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(min(TICK_SECONDS, every))
            try:
                await self.meter.ahead()
            except OutOfBalance as exc:
                return await self.warn_balance(exc)
            now = time.monotonic()
            if now - self.started >= self.max_seconds:
                await self.send(error_event(f"The session reached its length limit ({self.max_seconds} s).",
                                            code="session_length_limit", error_type="invalid_request_error"))
                return Outcome(CLOSE_TOO_LONG, "session_length_limit", repository.CLOSED)
            if now - last_beat >= every:
                last_beat = now
                await self._save()  # heartbeat_at, totals and transcript so far
