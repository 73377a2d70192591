"""Prompt templates through the HTTP API: versions, the sandbox, public templates, the
`template` field on /v1/chat/completions, /v1/responses and /api/ai/broker."""

from __future__ import annotations

import pytest

from tests.support.accounts import bearer
from tests.support.broker import ADMIN_TOKEN
from tests.support.usage import usage_rows

GREETING = {
    "name": "greeting", "prompt": "Say hello to {{ name }} in {{ lang }}.",
    "variables": [{"name": "name", "type": "string"}, {"name": "lang", "type": "string", "default": "English"}],
    "category": "demo",
}


def _create(http, body, status=201):
    response = http.post("/api/ai/templates", json=body)
    assert response.status_code == status, response.text
    return response.json()


def test_create_read_update_versions_render_and_delete(broker, org):
    with broker.client(org["api_key"]) as http:
        made = _create(http, GREETING)
        assert made["version"] == 1 and made["usage_count"] == 0 and made["id"].startswith("tpl_")
        assert made["variables"][1] == {"name": "lang", "type": "string", "required": False, "default": "English"}
        assert http.get(f"/api/ai/templates/{made['id']}").json()["prompt"] == GREETING["prompt"]
        changed = http.put(f"/api/ai/templates/{made['id']}", json={"prompt": "Greet {{ name }} warmly in {{ lang }}."})
        assert changed.status_code == 200 and changed.json()["version"] == 2
        same = http.put(f"/api/ai/templates/{made['id']}", json={"prompt": "Greet {{ name }} warmly in {{ lang }}."})
        assert same.json()["version"] == 2  # no change, no new version
        versions = http.get(f"/api/ai/templates/{made['id']}/versions").json()["data"]
        assert [v["version"] for v in versions] == [2, 1]
        assert versions[1]["prompt"] == GREETING["prompt"]
        now = http.post(f"/api/ai/templates/{made['id']}/render", json={"variables": {"name": "Ana"}})
        assert now.status_code == 200 and now.json()["content"] == "Greet Ana warmly in English."
        old = http.post(f"/api/ai/templates/{made['id']}/render", json={"variables": {"name": "Ana", "lang": "Spanish"}, "version": 1})
        assert old.json() == {"template_id": made["id"], "version": 1, "role": "user", "content": "Say hello to Ana in Spanish."}
        assert http.post(f"/api/ai/templates/{made['id']}/render", json={"version": 9}).status_code == 404
        listed = http.get("/api/ai/templates", params={"category": "demo"}).json()
        assert [t["id"] for t in listed["data"]] == [made["id"]] and listed["total"] == 1
        assert http.get(f"/api/ai/templates/{made['id']}").json()["usage_count"] == 0  # a dry run is not a use
        assert http.delete(f"/api/ai/templates/{made['id']}").status_code == 204
        assert http.get(f"/api/ai/templates/{made['id']}").status_code == 404


@pytest.mark.parametrize(("prompt", "code", "line"), [
    ("Hello\n{{ name ", "template_syntax_error", 2),
    ("ok\n\n{% for x in items %}{{ x }}", "template_syntax_error", 3),
    ("{{ ''.__class__.__mro__ }}", "template_forbidden", 1),
    ("a\n{{ name.upper() }}", "template_forbidden", 2),
    ("{{ range(10) }}", "template_forbidden", 1),
    ("{{ cycler.__init__.__globals__ }}", "template_forbidden", 1),
    ("{{ name|attr('__class__') }}", "template_syntax_error", 1),  # the attr filter does not exist here
    ("{{ name|center(1000000000) }}", "template_syntax_error", 1),  # nor do filters that allocate by width
])
def test_syntax_errors_and_sandbox_escapes_are_refused_at_write_time_naming_the_line(broker, org, prompt, code, line):
    with broker.client(org["api_key"]) as http:
        response = http.post("/api/ai/templates", json={"name": "bad", "prompt": prompt})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["line"] == line and f"line {line}" in error["message"]


def test_render_time_escapes_and_blowups_are_refused(broker, org):
    with broker.client(org["api_key"]) as http:
        tpl = _create(http, {"name": "t", "prompt": "{{ user[k] }}|{{ 'ab' * n }}|{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}",
                             "variables": [{"name": "user", "type": "object"}, {"name": "k", "type": "string"},
                                           {"name": "n", "type": "integer"}, {"name": "xs", "type": "array"}]})
        path = f"/api/ai/templates/{tpl['id']}/render"
        ok = http.post(path, json={"variables": {"user": {"name": "Bo"}, "k": "name", "n": 2, "xs": [1, 2]}})
        assert ok.json()["content"] == "Bo|abab|"
        for k in ("__class__", "items", "__init__"):  # a dict's attributes are not its keys
            escape = http.post(path, json={"variables": {"user": {}, "k": k, "n": 1, "xs": []}})
            assert escape.status_code == 400 and escape.json()["error"]["code"] == "template_forbidden", escape.text
        big = http.post(path, json={"variables": {"user": {"name": "Bo"}, "k": "name", "n": 10**9, "xs": []}})
        assert big.status_code == 400 and big.json()["error"]["code"] == "template_forbidden"
        loops = http.post(path, json={"variables": {"user": {"name": "Bo"}, "k": "name", "n": 1, "xs": list(range(1000))}})
        assert loops.status_code == 400 and loops.json()["error"]["code"] == "template_forbidden"


def test_variables_are_checked_on_write_and_on_use(broker, org):
    with broker.client(org["api_key"]) as http:
        undeclared = http.post("/api/ai/templates", json={"name": "x", "prompt": "{{ a }} {{ b }}", "variables": ["a"]})
        assert undeclared.status_code == 400 and undeclared.json()["error"]["code"] == "template_variable_undeclared"
        inferred = _create(http, {"name": "x", "prompt": "{{ a }} and {{ b }}"})
        assert [v["name"] for v in inferred["variables"]] == ["a", "b"]
        bad_type = http.post("/api/ai/templates", json={"name": "x", "prompt": "{{ a }}", "variables": [{"name": "a", "type": "date"}]})
        assert bad_type.status_code == 400
        path = f"/api/ai/templates/{inferred['id']}/render"
        missing = http.post(path, json={"variables": {"a": 1}})
        assert missing.status_code == 400 and missing.json()["error"]["code"] == "template_variable_missing"
        unknown = http.post(path, json={"variables": {"a": 1, "b": 2, "c": 3}})
        assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "template_variable_unknown"
        typed = _create(http, {"name": "n", "prompt": "{{ n }}", "variables": [{"name": "n", "type": "integer"}]})
        wrong = http.post(f"/api/ai/templates/{typed['id']}/render", json={"variables": {"n": "seven"}})
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "template_variable_invalid"


def test_public_templates_are_the_platforms_and_tenants_templates_are_their_own(broker, org, other_org):
    with broker.client(org["api_key"]) as http:
        refused = http.post("/api/ai/templates", json={**GREETING, "public": True})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "public_template_platform_only"
        mine = _create(http, GREETING)
    with broker.client() as platform:
        platform.headers.update(bearer(ADMIN_TOKEN, **{"x-organization-id": org["organization_id"]}))
        public = _create(platform, {**GREETING, "name": "platform greeting", "public": True})
    assert public["public"] is True and public["organization_id"] is None
    with broker.client(other_org["api_key"]) as http:
        assert http.get(f"/api/ai/templates/{mine['id']}").status_code == 404
        assert http.put(f"/api/ai/templates/{mine['id']}", json={"name": "stolen"}).status_code == 404
        assert http.delete(f"/api/ai/templates/{mine['id']}").status_code == 404
        assert http.get(f"/api/ai/templates/{mine['id']}/versions").status_code == 404
        assert http.post(f"/api/ai/templates/{mine['id']}/render", json={"variables": {"name": "x"}}).status_code == 404
        assert [t["id"] for t in http.get("/api/ai/templates").json()["data"]] == [public["id"]]
        assert http.get(f"/api/ai/templates/{public['id']}").status_code == 200
        assert http.put(f"/api/ai/templates/{public['id']}", json={"name": "mine now"}).status_code == 403
        assert http.delete(f"/api/ai/templates/{public['id']}").status_code == 403
        used = http.post("/v1/chat/completions", json={"model": "mock-chat", "template": {"id": public["id"], "variables": {"name": "Zoe"}}})
        assert used.status_code == 200
        stolen = http.post("/v1/chat/completions", json={"model": "mock-chat", "template": {"id": mine["id"], "variables": {"name": "Zoe"}}})
        assert stolen.status_code == 404


def test_a_member_uses_templates_but_cannot_write_them(broker, team):
    with broker.client() as http:
        owner, member = bearer(team["owner"]), bearer(team["member"])
        made = http.post("/api/ai/templates", json=GREETING, headers=owner)
        assert made.status_code == 201
        assert http.post("/api/ai/templates", json=GREETING, headers=member).status_code == 403
        assert http.put(f"/api/ai/templates/{made.json()['id']}", json={"name": "x"}, headers=member).status_code == 403
        assert http.post(f"/api/ai/templates/{made.json()['id']}/render", json={"variables": {"name": "M"}}, headers=member).status_code == 200


def test_the_template_field_on_the_ai_routes(broker, org):
    with broker.client(org["api_key"]) as http:
        user = _create(http, GREETING)
        system = _create(http, {"name": "tone", "prompt": "Answer in {{ style }}.", "role": "system"})
        chat = http.post("/v1/chat/completions", json={"model": "mock-chat", "template": {"id": user["id"], "variables": {"name": "Ana"}}})
        assert chat.status_code == 200, chat.text
        assert chat.json()["choices"][0]["message"]["content"].startswith("Mock reply to: Say hello to Ana in English.")
        both = http.post("/v1/chat/completions", json={
            "model": "mock-chat", "messages": [{"role": "user", "content": "what is two plus two"}],
            "template": {"id": system["id"], "variables": {"style": "haiku"}}})
        assert both.status_code == 200 and "what is two plus two" in both.json()["choices"][0]["message"]["content"]
        responses = http.post("/v1/responses", json={"model": "mock-chat", "template": {"id": user["id"], "version": 1, "variables": {"name": "Bo", "lang": "Greek"}}})
        assert responses.status_code == 200, responses.text
        assert "Say hello to Bo in Greek." in responses.json()["output"][0]["content"][0]["text"]
        broker_call = http.post("/api/ai/broker", json={"model": "mock-chat", "template": {"id": user["id"], "variables": {"name": "Cy"}}})
        assert broker_call.status_code == 200, broker_call.text
        assert broker_call.json()["response"].startswith("Mock reply to: Say hello to Cy")
        missing = http.post("/v1/chat/completions", json={"model": "mock-chat", "template": {"id": user["id"], "variables": {}}})
        assert missing.status_code == 400 and missing.json()["error"]["code"] == "template_variable_missing"
        for bad in ("tpl_nope", {"id": 5}, {"id": user["id"], "extra": 1}, {"id": user["id"], "version": "two"}):
            response = http.post("/v1/chat/completions", json={"model": "mock-chat", "template": bad})
            assert response.status_code in (400, 404), response.text
        assert http.get(f"/api/ai/templates/{user['id']}").json()["usage_count"] == 3
    rows = usage_rows(broker, org["organization_id"])
    assert sum(1 for r in rows if r.status == "success") == 4
