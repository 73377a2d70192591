"""The chat-stream -> Responses-events translator on its own: split tool-call arguments, two
calls, ids, order and sequence numbers (what real upstreams send, beyond the mock's shapes)."""

from __future__ import annotations

from aibroker.gateway.formats.responses import normalize_input, to_messages
from aibroker.gateway.formats.responses_render import Shell, StreamTranslator


def _chunk(delta=None, finish=None, **extra):
    return {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


def test_split_arguments_and_two_calls_become_two_function_call_items():
    translator = StreamTranslator(Shell("resp_abc", {"model": "m", "input": "x"}))
    events = translator.start()
    for chunk in (
        _chunk({"content": "Checking."}),
        _chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "a", "arguments": '{"x"'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        _chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "b", "arguments": "{}"}}]}),
        _chunk(finish="tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "completion_tokens_details": {"reasoning_tokens": 2}},
         "aibroker": {"cost_micros": 9, "balance_micros": 1}},
    ):
        events += translator.feed(chunk)
    closing, response = translator.finish()
    events += [*closing, translator.terminal(response)]
    kinds = [kind for kind, _ in events]
    assert kinds == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed",
    ]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    message, first, second = response["output"]
    assert message["content"][0]["text"] == "Checking." and message["id"] == "msg_abc_0"
    assert (first["call_id"], first["name"], first["arguments"], first["id"]) == ("call_1", "a", '{"x": 1}', "fc_abc_1")
    assert (second["call_id"], second["arguments"], [d["output_index"] for k, d in events if k == "response.output_item.added"]) == (
        "call_2", "{}", [0, 1, 2])
    assert response["usage"] == {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 7,
                                 "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 12}
    assert response["aibroker"] == {"cost_micros": 9, "balance_micros": 1} and response["status"] == "completed"


def test_a_length_finish_is_incomplete():
    translator = StreamTranslator(Shell("resp_x", {"model": "m", "input": "x"}))
    translator.start()
    translator.feed(_chunk({"content": "cut"}, finish="length"))
    _, response = translator.finish()
    assert response["status"] == "incomplete" and response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert translator.terminal(response)[0] == "response.incomplete"


def test_history_merges_an_assistant_text_with_its_calls_and_maps_roles():
    items = normalize_input([
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": "hi"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "let me check"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": ""},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "one"}]},
        {"type": "function_call_output", "call_id": "c2", "output": "two"},
        {"type": "reasoning", "summary": []},
    ])
    messages = to_messages(items)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    assistant = messages[2]
    assert assistant["content"] == "let me check" and [c["id"] for c in assistant["tool_calls"]] == ["c1", "c2"]
    assert assistant["tool_calls"][1]["function"]["arguments"] == "{}"
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "one"}
    assert all(item["id"] for item in items)
