"""The client library other modules of a platform use (seed 000's aiBroker client):

    from aibroker.client import Broker
    broker = Broker("http://127.0.0.1:8080", api_key="abk_...")
    reply = broker.chat("What are our best-selling products?", user_id="u1")
    print(reply.text, reply.cost_micros)

`AsyncBroker` has the same methods as coroutines. With the platform service key, pass
`organization_id=` (to the constructor or per call). Errors raise `BrokerClientError`
(`InsufficientBalance` for 402, `RateLimited` for 429).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

CHAT_RESPONSE = "CHAT_RESPONSE"
SENTIMENT_ANALYSIS = "SENTIMENT_ANALYSIS"
CONTENT_GENERATION = "CONTENT_GENERATION"
TRANSLATION = "TRANSLATION"
SUMMARIZATION = "SUMMARIZATION"

_SENTIMENT_SYSTEM = (
    "You classify the sentiment of a text. Answer only with JSON: "
    '{"sentiment": "positive" | "negative" | "neutral", "score": number from -1 to 1}.'
)


class BrokerClientError(Exception):
    def __init__(self, status: int, error_type: str, message: str, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message
        self.body = body


class InsufficientBalance(BrokerClientError):
    @property
    def available_micros(self) -> int | None:
        return self.body.get("error", {}).get("available_micros")

    @property
    def required_micros(self) -> int | None:
        return self.body.get("error", {}).get("required_micros")


class RateLimited(BrokerClientError):
    pass


@dataclass(frozen=True)
class BrokerResult:
    text: str
    provider: str
    model: str
    cost_micros: int
    provider_cost_micros: int
    input_tokens: int
    output_tokens: int
    request_id: str
    balance_micros: int | None
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Sentiment:
    sentiment: str  # positive | negative | neutral | unknown
    score: float | None
    result: BrokerResult


def _result(data: dict[str, Any]) -> BrokerResult:
    cost, stats = data.get("cost", {}), data.get("stats", {})
    return BrokerResult(
        text=data.get("response", ""),
        provider=data.get("provider", ""),
        model=data.get("model", ""),
        cost_micros=int(cost.get("finalCostMicros", 0)),
        provider_cost_micros=int(cost.get("providerCostMicros", 0)),
        input_tokens=int(stats.get("inputTokens", 0)),
        output_tokens=int(stats.get("outputTokens", 0)),
        request_id=data.get("requestId", ""),
        balance_micros=data.get("balanceMicros"),
        raw=data,
    )


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"type": "http_error", "message": response.text}}
    error = body.get("error", {}) if isinstance(body, dict) else {}
    kind = {402: InsufficientBalance, 429: RateLimited}.get(response.status_code, BrokerClientError)
    raise kind(response.status_code, error.get("type", "error"), error.get("message", response.text), body)


def parse_sentiment(result: BrokerResult) -> Sentiment:
    """Read the model's JSON verdict; tolerate prose around it."""
    match = re.search(r"\{.*\}", result.text, re.DOTALL)
    try:
        verdict = json.loads(match.group(0)) if match else {}
    except ValueError:
        verdict = {}
    sentiment = str(verdict.get("sentiment", "unknown")).lower()
    score = verdict.get("score")
    return Sentiment(sentiment if sentiment in ("positive", "negative", "neutral") else "unknown",
                     float(score) if isinstance(score, (int, float)) else None, result)


class _Requests:
    """The request bodies, shared by the sync and async clients."""

    def __init__(self, organization_id: str | None, model: str | None) -> None:
        self.organization_id = organization_id
        self.model = model

    def body(self, prompt: str, usage_type: str, *, system: str | None = None, **options: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": prompt, "usageType": usage_type}
        org = options.pop("organization_id", None) or self.organization_id
        if org:
            body["organizationId"] = org
        if system:
            body["systemPrompt"] = system
        model = options.pop("model", None) or self.model
        if model:
            body["model"] = model
        for ours, theirs in (("user_id", "userId"), ("user_name", "userName"), ("temperature", "temperature"), ("max_tokens", "maxTokens")):
            if options.get(ours) is not None:
                body[theirs] = options[ours]
        return body

    def chat(self, message: str, **options: Any) -> dict[str, Any]:
        return self.body(message, CHAT_RESPONSE, system=options.pop("system", None), **options)

    def sentiment(self, text: str, **options: Any) -> dict[str, Any]:
        return self.body(text, SENTIMENT_ANALYSIS, system=_SENTIMENT_SYSTEM, temperature=0, **options)

    def generate(self, prompt: str, **options: Any) -> dict[str, Any]:
        return self.body(prompt, CONTENT_GENERATION, system=options.pop("system", None), **options)

    def translate(self, text: str, language: str, **options: Any) -> dict[str, Any]:
        system = f"Translate the user's text into {language}. Answer with the translation only."
        return self.body(text, TRANSLATION, system=system, **options)

    def summarize(self, text: str, **options: Any) -> dict[str, Any]:
        system = "Summarize the user's text in a few sentences. Answer with the summary only."
        return self.body(text, SUMMARIZATION, system=system, **options)


class Broker:
    """Synchronous client for `POST /api/ai/broker`."""

    def __init__(self, base_url: str, api_key: str, *, organization_id: str | None = None, model: str | None = None,
                 timeout: float = 120.0, http: httpx.Client | None = None) -> None:
        self._http = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._headers = {"authorization": f"Bearer {api_key}"}
        self._requests = _Requests(organization_id, model)

    def _send(self, body: dict[str, Any]) -> BrokerResult:
        response = self._http.post("/api/ai/broker", json=body, headers=self._headers)
        _raise_for(response)
        return _result(response.json())

    def chat(self, message: str, **options: Any) -> BrokerResult:
        return self._send(self._requests.chat(message, **options))

    def analyze_sentiment(self, text: str, **options: Any) -> Sentiment:
        return parse_sentiment(self._send(self._requests.sentiment(text, **options)))

    def generate_content(self, prompt: str, **options: Any) -> BrokerResult:
        return self._send(self._requests.generate(prompt, **options))

    def translate(self, text: str, language: str, **options: Any) -> BrokerResult:
        return self._send(self._requests.translate(text, language, **options))

    def summarize(self, text: str, **options: Any) -> BrokerResult:
        return self._send(self._requests.summarize(text, **options))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncBroker:
    """Asynchronous client for `POST /api/ai/broker`."""

    def __init__(self, base_url: str, api_key: str, *, organization_id: str | None = None, model: str | None = None,
                 timeout: float = 120.0, http: httpx.AsyncClient | None = None) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)
        self._headers = {"authorization": f"Bearer {api_key}"}
        self._requests = _Requests(organization_id, model)

    async def _send(self, body: dict[str, Any]) -> BrokerResult:
        response = await self._http.post("/api/ai/broker", json=body, headers=self._headers)
        _raise_for(response)
        return _result(response.json())

    async def chat(self, message: str, **options: Any) -> BrokerResult:
        return await self._send(self._requests.chat(message, **options))

    async def analyze_sentiment(self, text: str, **options: Any) -> Sentiment:
        return parse_sentiment(await self._send(self._requests.sentiment(text, **options)))

    async def generate_content(self, prompt: str, **options: Any) -> BrokerResult:
        return await self._send(self._requests.generate(prompt, **options))

    async def translate(self, text: str, language: str, **options: Any) -> BrokerResult:
        return await self._send(self._requests.translate(text, language, **options))

    async def summarize(self, text: str, **options: Any) -> BrokerResult:
        return await self._send(self._requests.summarize(text, **options))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncBroker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
