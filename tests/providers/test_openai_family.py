"""The OpenAI-compatible family through a running broker: self-hosted servers (vLLM, a custom
base URL) have their models discovered at startup and served at zero cost; a hosted provider
(Groq) serves only catalog models at their catalog price; a server that is down does not
block startup; and catalog overrides written through the admin API or the CLI reprice the
next request."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import openai
import pytest
from typer.testing import CliRunner

from aibroker.catalog.registry import ModelEntry, load_packaged
from aibroker.models import UsageRecord
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.broker import BrokerServer, serving

PRICES = load_packaged()
LOCAL_MODELS = ("Qwen/Qwen2.5-7B-Instruct", "nomic-ai/nomic-embed-text-v1.5")
GROQ_MODEL = "groq/llama-3.3-70b-versatile"
VLLM_MODEL = "vllm/Qwen/Qwen2.5-7B-Instruct"
MESSAGES = [{"role": "user", "content": "how fast is this provider"}]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def local_server() -> Iterator[FakeOpenAI]:
    """A self-hosted OpenAI-compatible server started without a key (vLLM, a custom box)."""
    with FakeOpenAI(api_key=None, models=LOCAL_MODELS, require_key=False) as fake:
        yield fake


@pytest.fixture
def local(local_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    local_server.reset()
    yield local_server
    local_server.reset()


@pytest.fixture
def broker_env(upstream: FakeOpenAI, local: FakeOpenAI) -> dict[str, str]:
    """Groq is the fake OpenAI (hosted, keyed); vLLM and a custom `lab` server are the keyless
    local fake; llama.cpp points at a port nobody listens on."""
    return {
        "GROQ_API_KEY": "sk-test",
        "GROQ_BASE_URL": upstream.base_url,
        "VLLM_BASE_URL": local.base_url,
        "LLAMACPP_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1",
        "AIBROKER_EXTRA_PROVIDERS": json.dumps([{"name": "lab", "base_url": local.base_url}]),
        "AIBROKER_ADMIN_TOKEN": "test-admin-token",
        "AIBROKER_RETRY_BASE_SECONDS": "0.01",
        "AIBROKER_RETRY_MAX_SECONDS": "0.05",
        "AIBROKER_UPSTREAM_TIMEOUT_SECONDS": "5",
    }


@pytest.fixture
def org(broker: BrokerServer) -> dict:
    return broker.create_org("Acme", credit="10")


@pytest.fixture
def client(broker: BrokerServer, org: dict) -> openai.OpenAI:
    return openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)


def billed(input_micros_per_m: int, output_micros_per_m: int, prompt: int, completion: int) -> int:
    exact = prompt * input_micros_per_m + completion * output_micros_per_m  # micros x 1e6
    return -(-exact * 13_000 // (10_000 * 1_000_000))  # x 1.30 (the plan's margin), rounded up once


def last_row(broker: BrokerServer, org: dict) -> UsageRecord:
    broker.flush()
    rows = broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    return max(rows, key=lambda r: r.created_at)


def chat_cost(client: openai.OpenAI, model: str) -> tuple[int, int, int]:
    """(billed micros from the header, prompt tokens, completion tokens) of one chat call."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    usage = raw.parse().usage
    assert raw.headers["x-aibroker-model"] == model
    return int(raw.headers["x-aibroker-cost-micros"]), usage.prompt_tokens, usage.completion_tokens


# -- discovery ----------------------------------------------------------------------


def test_local_servers_are_discovered_and_served_free_hosted_ones_are_not(broker, org, client, upstream, local):
    listed = {m.id for m in client.models.list()}
    assert {VLLM_MODEL, "vllm/nomic-ai/nomic-embed-text-v1.5", "lab/Qwen/Qwen2.5-7B-Instruct"} <= listed
    # Groq's server lists models too, but a hosted provider is never asked: nothing free from it.
    assert not {m for m in listed if m.startswith("groq/") and m not in PRICES}
    assert not [r for r in upstream.requests if r.path.endswith("/models")]
    assert not [m for m in listed if m.startswith("llamacpp/")]  # its server is down; startup went on

    cost, prompt, completion = chat_cost(client, VLLM_MODEL)
    assert cost == 0 and prompt > 0 and completion > 0
    sent = local.requests[-1]
    assert sent.body["model"] == "Qwen/Qwen2.5-7B-Instruct" and "authorization" not in sent.headers
    row = last_row(broker, org)
    assert (row.provider, row.model, row.status, row.billed_cost_micros) == ("vllm", VLLM_MODEL, "success", 0)
    assert (row.input_tokens, row.output_tokens) == (prompt, completion)

    chunks = list(client.chat.completions.create(model="lab/Qwen/Qwen2.5-7B-Instruct", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: how fast is this provider"
    row = last_row(broker, org)
    assert (row.provider, row.streamed, row.billed_cost_micros) == ("lab", True, 0) and row.output_tokens > 0

    vectors = client.embeddings.create(model="vllm/nomic-ai/nomic-embed-text-v1.5", input=["alpha beta"])
    assert len(vectors.data[0].embedding) == 8
    assert last_row(broker, org).billed_cost_micros == 0


def test_hosted_groq_serves_catalog_models_at_the_catalog_price(broker, org, client, upstream):
    cost, prompt, completion = chat_cost(client, GROQ_MODEL)
    entry = PRICES[GROQ_MODEL]
    assert (entry.input_micros_per_m, entry.output_micros_per_m) == (590_000, 790_000)
    assert cost == billed(590_000, 790_000, prompt, completion) > 0
    sent = upstream.requests[-1]
    assert sent.body["model"] == "llama-3.3-70b-versatile" and sent.headers["authorization"] == "Bearer sk-test"
    assert last_row(broker, org).billed_cost_micros == cost
    # gpt-4o-mini is on Groq's (fake) server but not in the catalog under groq: refused, never free.
    with pytest.raises(openai.NotFoundError, match="catalog has no 'gpt-4o-mini'"):
        client.chat.completions.create(model="groq/gpt-4o-mini", messages=MESSAGES)


# -- overrides through the admin API ------------------------------------------------------


def test_admin_override_reprices_the_next_request_and_delete_restores(broker, org, client):
    with broker.admin() as admin:
        put = admin.put(f"/api/admin/catalog/{GROQ_MODEL}",
                        json={"input_per_1m": "2.00", "output_per_1m": 4, "context_length": 65536})
        assert put.status_code == 200, put.text
        expected = {"id": GROQ_MODEL, "input_per_1m": "2.000000", "output_per_1m": "4.000000",
                    "cached_input_per_1m": "0.590000", "context_length": 65536, "max_output_tokens": 32768,
                    "source": "override"}  # cached input and max output: the packaged values
        assert expected.items() <= put.json().items()
        cost, prompt, completion = chat_cost(client, GROQ_MODEL)
        assert cost == billed(2_000_000, 4_000_000, prompt, completion)
        assert last_row(broker, org).billed_cost_micros == cost

        # A discovered local model can be priced too, and falls back to free when the override goes.
        assert admin.put(f"/api/admin/catalog/{VLLM_MODEL}",
                         json={"input_per_1m": "1", "output_per_1m": "1"}).status_code == 200
        cost, prompt, completion = chat_cost(client, VLLM_MODEL)
        assert cost == billed(1_000_000, 1_000_000, prompt, completion) > 0
        listed = {row["id"]: row for row in admin.get("/api/admin/catalog").json()["data"]}
        assert listed[VLLM_MODEL]["source"] == "override" and listed[GROQ_MODEL]["source"] == "override"
        assert listed["vllm/nomic-ai/nomic-embed-text-v1.5"]["source"] == "discovered"

        assert admin.delete(f"/api/admin/catalog/{VLLM_MODEL}").status_code == 204
        assert admin.delete(f"/api/admin/catalog/{GROQ_MODEL}").status_code == 204
    assert chat_cost(client, VLLM_MODEL)[0] == 0
    cost, prompt, completion = chat_cost(client, GROQ_MODEL)
    assert cost == billed(590_000, 790_000, prompt, completion)


def test_admin_override_of_a_new_model_then_disabling_it(broker, org, client):
    with broker.admin() as admin:
        added = admin.put("/api/admin/catalog/groq/moonshotai/kimi-k2-instruct",
                          json={"input_per_1m": "1.00", "output_per_1m": "3.00", "capabilities": ["tools", "streaming"]})
        assert added.status_code == 200, added.text
        assert added.json()["cached_input_per_1m"] == "1.000000"  # never free by omission
        cost, prompt, completion = chat_cost(client, "groq/moonshotai/kimi-k2-instruct")
        assert cost == billed(1_000_000, 3_000_000, prompt, completion)
        assert admin.put("/api/admin/catalog/groq/moonshotai/kimi-k2-instruct",
                         json={"input_per_1m": "1", "output_per_1m": "3", "enabled": False}).status_code == 200
    with pytest.raises(openai.NotFoundError, match="disabled"):
        client.chat.completions.create(model="groq/moonshotai/kimi-k2-instruct", messages=MESSAGES)


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        (GROQ_MODEL, {"input_per_1m": "-0.01"}, 400, "zero or more"),
        (GROQ_MODEL, {"output_per_1m": "cheap"}, 400, "decimal number"),
        (GROQ_MODEL, {"input_per_1m": "NaN"}, 400, "zero or more"),
        (GROQ_MODEL, {"context_length": 0}, 400, "context_length"),
        (GROQ_MODEL, {"capabilities": ["telepathy"]}, 400, "Unknown capabilities"),
        ("nobody/some-model", {"input_per_1m": "1", "output_per_1m": "1"}, 404, "Unknown provider 'nobody'"),
        ("groq/not-in-the-catalog", {"input_per_1m": "1"}, 400, "give both input_per_1m and output_per_1m"),
    ],
)
def test_admin_override_bad_input_is_a_clear_client_error(broker, client, path, body, status, needle):
    with broker.admin() as admin:
        response = admin.put(f"/api/admin/catalog/{path}", json=body)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]
    cost, prompt, completion = chat_cost(client, GROQ_MODEL)  # nothing changed
    assert cost == billed(590_000, 790_000, prompt, completion)


def test_admin_catalog_routes_need_the_admin_token_and_delete_needs_an_override(broker, org):
    with broker.client(org["api_key"]) as tenant:
        assert tenant.put(f"/api/admin/catalog/{GROQ_MODEL}", json={"input_per_1m": "0"}).status_code == 401
    with broker.admin() as admin:
        missing = admin.delete(f"/api/admin/catalog/{GROQ_MODEL}")
        assert missing.status_code == 404 and "no catalog override" in missing.json()["error"]["message"]
        assert admin.delete("/api/admin/catalog/nobody/x").status_code == 404


# -- overrides through the CLI ------------------------------------------------------------


def _cli(*args: str) -> tuple[int, str]:
    import typer

    from aibroker.catalog.cli import register
    from aibroker.config import get_settings

    app = typer.Typer()
    app.command("noop")(lambda: None)
    register(app)
    get_settings.cache_clear()  # the database URL of this test
    try:
        result = CliRunner().invoke(app, ["catalog", *args])
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


def test_cli_set_reprices_requests_after_restart_and_refuses_bad_input(
    database_url, broker_env, monkeypatch, upstream, local
):
    for name, value in {**broker_env, "AIBROKER_DATABASE_URL": database_url}.items():  # for the CLI
        monkeypatch.setenv(name, value)
    code, out = _cli("set", GROQ_MODEL, "--input-per-1m", "3", "--output-per-1m", "6.5", "--cached-input-per-1m",
                     "0.3", "--max-output", "1000", "--json")
    assert code == 0, out
    expected = {"id": GROQ_MODEL, "input_per_1m": "3.000000", "output_per_1m": "6.500000",
                "cached_input_per_1m": "0.300000", "max_output_tokens": 1000, "context_length": 131072,
                "source": "override"}
    assert expected.items() <= json.loads(out).items()

    for args, needle in [
        (("set", GROQ_MODEL, "--input-per-1m", "-1"), "zero or more"),
        (("set", "nobody/model", "--input-per-1m", "1", "--output-per-1m", "1"), "Unknown provider 'nobody'"),
        (("set", "groq-without-a-model"), "not a model id"),
        (("unset", "groq/llama-3.1-8b-instant"), "no catalog override"),
    ]:
        code, out = _cli(*args)
        assert code == 1 and needle in out, out

    code, out = _cli("list", "--provider", "groq", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert rows[GROQ_MODEL]["source"] == "override" and rows["groq/llama-3.1-8b-instant"]["source"] == "packaged"
    assert "vllm/" not in out  # discovery is the running broker's business

    with serving(database_url, broker_env, monkeypatch) as broker:  # a broker reads overrides at startup
        org = broker.create_org("Acme", credit="10")
        client = openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
        cost, prompt, completion = chat_cost(client, GROQ_MODEL)
        assert cost == billed(3_000_000, 6_500_000, prompt, completion)
        with pytest.raises(openai.BadRequestError, match="at most 1000"):
            client.chat.completions.create(model=GROQ_MODEL, messages=MESSAGES, max_tokens=2000)
    code, out = _cli("unset", GROQ_MODEL)
    assert code == 0 and "removed" in out


def test_a_running_broker_picks_up_an_override_another_process_wrote(database_url, broker_env, monkeypatch, upstream, local):
    with serving(database_url, {**broker_env, "AIBROKER_CATALOG_RELOAD_SECONDS": "0.1"}, monkeypatch) as broker:
        org = broker.create_org("Acme", credit="10")
        client = openai.OpenAI(base_url=broker.url + "/v1", api_key=org["api_key"], max_retries=0)
        before = client.models.retrieve(GROQ_MODEL).model_extra["pricing"]["prompt"]
        code, out = _cli("set", GROQ_MODEL, "--input-per-1m", "9", "--output-per-1m", "18")  # not through this broker
        assert code == 0, out
        deadline = time.monotonic() + 10
        while client.models.retrieve(GROQ_MODEL).model_extra["pricing"]["prompt"] == before:
            assert time.monotonic() < deadline, "the broker never reloaded the catalog"
            time.sleep(0.05)  # waiting for the reload to happen, then checking what it did
        cost, prompt, completion = chat_cost(client, GROQ_MODEL)
        assert cost == billed(9_000_000, 18_000_000, prompt, completion)


def test_discovered_entries_read_the_servers_context_length():
    from aibroker.providers.openai_compat import discovered_entry

    vllm = discovered_entry("vllm", {"id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model", "max_model_len": 65536})
    assert isinstance(vllm, ModelEntry) and (vllm.id, vllm.context_length) == ("vllm/meta-llama/Llama-3.1-8B-Instruct", 65536)
    assert (vllm.input_micros_per_m, vllm.output_micros_per_m, vllm.kind) == (0, 0, "chat")
    llamacpp = discovered_entry("llamacpp", {"id": "qwen2.5-7b-q4.gguf", "meta": {"n_ctx_train": 32768}})
    assert llamacpp is not None and llamacpp.context_length == 32768 and llamacpp.supports("tools")
    assert discovered_entry("vllm", {"id": "bge-embed"}).kind == "embedding"
    assert discovered_entry("vllm", {"object": "model"}) is None


async def test_a_priced_discovered_model_falls_back_to_free_when_its_override_goes(database_url):
    from aibroker.catalog.service import Catalog
    from aibroker.db import Database
    from aibroker.models import ModelOverride
    from aibroker.providers.openai_compat import discovered_entry

    db = Database(database_url)
    try:
        async with db.sessions() as session:
            session.add(ModelOverride(id=VLLM_MODEL, input_micros_per_m=100_000, output_micros_per_m=200_000))
            await session.commit()
            catalog = Catalog({"vllm"})
            await catalog.load_overrides(session)  # startup: overrides first, then discovery
            found = [discovered_entry("vllm", {"id": name}) for name in LOCAL_MODELS]
            added = catalog.register_discovered([e for e in found if e is not None])
            assert [e.id for e in added] == ["vllm/nomic-ai/nomic-embed-text-v1.5"]  # the priced one stays priced
            assert catalog.resolve(VLLM_MODEL).input_micros_per_m == 100_000
            await session.delete(await session.get(ModelOverride, VLLM_MODEL))
            await session.commit()
            await catalog.load_overrides(session)
            entry = catalog.resolve(VLLM_MODEL)
            assert (entry.input_micros_per_m, entry.output_micros_per_m) == (0, 0)
    finally:
        await db.dispose()
