"""openai-agents (its default path: the Responses API) running an agent with one function tool to
its final output, against a running broker on mock-chat: the mock calls the tool, the SDK runs it and
sends its output back, the mock answers in text. Every model call is billed and recorded."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from agents import Agent, ModelSettings, RunConfig, Runner, function_tool
from agents.models.openai_provider import OpenAIProvider
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI

from aibroker.models import LedgerEntry
from tests.support.usage import usage_rows

ROOT = Path(__file__).resolve().parents[2]


def test_agent_with_one_tool_runs_to_its_final_output(broker, org, database_url):
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    async def run():  # type: ignore[no-untyped-def]
        client = AsyncOpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
        provider = OpenAIProvider(openai_client=client)  # default API: responses
        assert isinstance(provider.get_model("mock-chat"), OpenAIResponsesModel)
        agent = Agent(name="Weather", instructions="Answer with the weather.", model="mock-chat", tools=[get_weather],
                      model_settings=ModelSettings(temperature=0))
        try:
            return await Runner.run(agent, "What is the weather in Lima?",
                                    run_config=RunConfig(model_provider=provider, tracing_disabled=True))
        finally:
            await client.close()

    result = asyncio.run(run())
    assert len(calls) == 1 and isinstance(calls[0], str)  # the tool ran once, with arguments fitting its schema
    assert result.final_output == f"Mock answer from the tool result: sunny in {calls[0]}"  # the tool output went back
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"], kinds
    assert len(result.raw_responses) == 2 and all(r.response_id.startswith("resp_") for r in result.raw_responses)
    rows = usage_rows(broker, org["organization_id"])
    assert [(r.endpoint, r.status) for r in rows] == [("responses", "success")] * 2
    assert sum(r.output_tokens for r in rows) == sum(r.usage.output_tokens for r in result.raw_responses)
    for row in rows:
        [debit] = broker.rows(LedgerEntry, LedgerEntry.usage_record_id == row.id)
        assert debit.amount_micros == -row.billed_cost_micros < 0
    ledger = subprocess.run([str(ROOT / ".venv" / "bin" / "aibroker"), "verify-ledger"], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "AIBROKER_DATABASE_URL": database_url})
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
