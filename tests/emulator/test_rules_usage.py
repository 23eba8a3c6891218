"""Emulator usage: ChatML prompt ids against ``count_messages``, the implicit and explicit cache."""

from __future__ import annotations

from typing import Any

import pytest

from qwenkit.emulator.config import CacheConfig
from qwenkit.emulator.usage import (
    CacheResult,
    PrefixCache,
    completion_usage,
    explicit_marks,
    render_prompt,
    render_prompt_ids,
)
from qwenkit.tokens import count_messages, get_tokenizer
from qwenkit.types import ChatRequest, Usage

FAMILIES = ("qwen", "qwen3.5")
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
USER = {"role": "user", "content": "Who are you?"}
TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Query the weather of a city.",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_current_weather", "arguments": '{"location": "杭州"}'},
}


def request(messages: list[dict[str, Any]], **fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": "qwen-plus", "messages": messages, **fields})


# -- prompt ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_prompt_ids_are_the_chatml_rendering(family: str) -> None:
    messages = [
        SYSTEM,
        USER,
        {"role": "assistant", "content": "I am Qwen."},
        {"role": "user", "content": "你是谁？"},
    ]
    ids = render_prompt_ids(request(messages), family)
    assert len(ids) == count_messages(messages, family).total
    expected = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWho are you?<|im_end|>\n"
        "<|im_start|>assistant\nI am Qwen.<|im_end|>\n"
        "<|im_start|>user\n你是谁？<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    tokenizer = get_tokenizer(family)
    assert tokenizer.decode(ids) == expected
    assert ids == tokenizer.encode(expected)


def test_reference_counts() -> None:
    assert len(render_prompt_ids(request([SYSTEM, USER]), "qwen")) == 23
    assert len(render_prompt_ids(request([{"role": "user", "content": "你是谁？"}]), "qwen")) == 11


def test_partial_assistant_turn_has_no_generation_prefix() -> None:
    messages: list[dict[str, Any]] = [
        USER,
        {"role": "assistant", "content": "I am", "partial": True},
    ]
    ids = render_prompt_ids(request(messages), "qwen")
    assert len(ids) == count_messages(messages, "qwen").total
    assert get_tokenizer("qwen").decode(ids).endswith("<|im_start|>assistant\nI am")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("with_system", [True, False])
def test_tool_estimates_have_the_counted_length(family: str, with_system: bool) -> None:
    messages: list[dict[str, Any]] = [
        *([SYSTEM] if with_system else []),
        {"role": "user", "content": "Weather in Hangzhou?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "content": "sunny, 25°C", "tool_call_id": "call_1"},
        {"role": "tool", "content": "humid", "tool_call_id": "call_1"},
    ]
    req = request(messages, tools=[TOOL])
    ids = render_prompt_ids(req, family)
    count = count_messages(messages, family, [TOOL])
    assert count.estimated_tokens > 0
    assert len(ids) == count.total
    other = request([*messages[:-1], {**messages[-1], "content": "dry"}], tools=[TOOL])
    other_ids = render_prompt_ids(other, family)
    assert (
        other_ids[: sum(count.messages[:-1]) + count.tools]
        == ids[: sum(count.messages[:-1]) + count.tools]
    )
    assert other_ids != ids


def test_tool_definitions_follow_a_leading_system_message() -> None:
    plain = render_prompt_ids(request([SYSTEM, USER]), "qwen")
    with_tools = render_prompt_ids(request([SYSTEM, USER], tools=[TOOL]), "qwen")
    system_len = count_messages([SYSTEM], "qwen").messages[0]
    assert with_tools[:system_len] == plain[:system_len]
    assert with_tools[-8:] == plain[-8:]


def marked_request(document: str, question: str) -> ChatRequest:
    marked = {"type": "text", "text": document, "cache_control": {"type": "ephemeral"}}
    parts = [marked, {"type": "text", "text": question}]
    return request([SYSTEM, {"role": "user", "content": parts}])


@pytest.mark.parametrize("family", FAMILIES)
def test_explicit_marks_end_at_the_marked_part(family: str) -> None:
    req = marked_request("Long document. " * 50, "Summarise it.")
    rendered = render_prompt(req, family)
    assert rendered.marks == explicit_marks(req, family)
    assert len(rendered.marks) == 1
    mark = rendered.marks[0]
    prefix = get_tokenizer(family).decode(rendered.ids[:mark])
    # the trailing space merges with the next word: the mark stops before that token
    assert prefix.endswith("<|im_start|>user\n" + "Long document. " * 49 + "Long document.")
    other = render_prompt(marked_request("Long document. " * 50, "Explain it."), family)
    assert other.marks == [mark]
    assert other.ids[:mark] == rendered.ids[:mark]
    exact = render_prompt(marked_request("Long document.", "2024 summary"), family)
    text = get_tokenizer(family).decode(exact.ids[: exact.marks[0]])
    assert text.endswith("user\nLong document.")
    assert render_prompt(request([SYSTEM, USER]), family).marks == []


# -- implicit cache ------------------------------------------------------------------------------


def ids(n: int, start: int = 1000) -> list[int]:
    return list(range(start, start + n))


def test_implicit_needs_a_prefix_of_at_least_min_tokens() -> None:
    cache = PrefixCache(CacheConfig())
    assert cache.observe("k", "m", ids(200)) == CacheResult()
    assert cache.observe("k", "m", ids(200)) == CacheResult()  # 199 reusable tokens < 256
    cache.observe("k", "m", ids(600))
    shared_255 = ids(255) + ids(400, start=50_000)
    assert cache.observe("k", "m", shared_255) == CacheResult()
    assert cache.observe("k", "m", ids(300)) == CacheResult(256, 0, "implicit")


def test_implicit_hits_in_whole_blocks() -> None:
    cache = PrefixCache(CacheConfig())
    first = cache.observe("k", "m", ids(1000))
    assert first == CacheResult()
    assert cache.observe("k", "m", ids(1000)) == CacheResult(768, 0, "implicit")  # 999 → 3 blocks
    fine = PrefixCache(CacheConfig(block_tokens=64))
    fine.observe("k", "m", ids(1000))
    assert fine.lookup("k", "m", ids(1500)).cached_tokens == 960
    assert fine.lookup("k", "m", ids(700) + ids(10, start=7)).cached_tokens == 704 - 64
    assert fine.lookup("k", "m", ids(1000)).cached_tokens == 960
    whole = PrefixCache(CacheConfig())
    whole.observe("k", "m", ids(512))
    assert whole.lookup("k", "m", ids(512)).cached_tokens == 256  # the last token is computed
    assert whole.lookup("k", "m", ids(513)).cached_tokens == 512


def test_lookup_alone_records_nothing() -> None:
    cache = PrefixCache(CacheConfig())
    assert cache.lookup("k", "m", ids(1000)) == CacheResult()
    assert cache.lookup("k", "m", ids(1000)) == CacheResult()
    cache.store("k", "m", ids(1000))
    assert cache.lookup("k", "m", ids(1000)).cached_tokens == 768


def test_implicit_is_per_key_and_model() -> None:
    cache = PrefixCache(CacheConfig())
    cache.observe("k1", "qwen-plus", ids(1000))
    assert cache.lookup("k2", "qwen-plus", ids(1000)) == CacheResult()
    assert cache.lookup("k1", "qwen-max", ids(1000)) == CacheResult()
    assert cache.lookup("k1", "qwen-plus", ids(1000)).cached_tokens == 768


def test_implicit_can_be_switched_off() -> None:
    cache = PrefixCache(CacheConfig(implicit=False))
    cache.observe("k", "m", ids(1000))
    assert cache.observe("k", "m", ids(1000)) == CacheResult()
    assert len(cache) == 0


def test_implicit_memory_is_bounded_lru() -> None:
    cache = PrefixCache(CacheConfig(block_tokens=256, max_entries=6))
    cache.observe("k", "m", ids(1000, start=0))  # 3 block prefixes
    cache.observe("k", "m", ids(1000, start=10_000))  # 3 more: full
    assert len(cache) == 6
    cache.observe("k", "m", ids(1000, start=0))  # refreshes the first prompt
    cache.observe("k", "m", ids(1000, start=20_000))  # evicts the least recently used (second)
    assert len(cache) == 6
    assert cache.lookup("k", "m", ids(1000, start=0)).cached_tokens == 768
    assert cache.lookup("k", "m", ids(1000, start=10_000)) == CacheResult()
    assert cache.lookup("k", "m", ids(1000, start=20_000)).cached_tokens == 768
    cache.reset()
    assert len(cache) == 0


# -- explicit cache ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_explicit_create_hit_refresh_expire() -> None:
    clock = Clock()
    cache = PrefixCache(CacheConfig(), clock=clock)
    prompt = ids(2000)
    assert cache.observe("k", "m", prompt, [1500]) == CacheResult(0, 1500, "explicit")
    clock.now = 100.0
    assert cache.observe("k", "m", prompt, [1500]) == CacheResult(1500, 0, "explicit")
    clock.now = 399.0  # the hit at 100 reset the 5-minute TTL
    assert cache.observe("k", "m", prompt, [1500]) == CacheResult(1500, 0, "explicit")
    clock.now = 699.0
    assert cache.lookup("k", "m", prompt, [1500]) == CacheResult(0, 1500, "explicit")
    assert len(cache) == 1
    cache.store("k", "m", prompt, [1500])
    assert len(cache) == 1  # the expired entry was replaced, not kept beside the new one
    assert cache.lookup("k", "m", prompt, [1500]) == CacheResult(1500, 0, "explicit")


def test_explicit_growing_conversation_creates_only_the_new_part() -> None:
    cache = PrefixCache(CacheConfig(), clock=Clock())
    cache.observe("k", "m", ids(2000), [1500])
    longer = ids(3000)
    assert cache.observe("k", "m", longer, [1500, 2600]) == CacheResult(1500, 1100, "explicit")
    assert cache.observe("k", "m", ids(3500), [3200]) == CacheResult(2600, 600, "explicit")
    assert cache.lookup("k2", "m", longer, [2600]) == CacheResult(0, 2600, "explicit")


def test_explicit_minimum_and_exclusivity_with_implicit() -> None:
    cache = PrefixCache(CacheConfig(), clock=Clock())
    cache.observe("k", "m", ids(2000))  # implicit record
    assert cache.observe("k", "m", ids(2000), [1000]) == CacheResult()  # below 1024: nothing
    assert cache.observe("k", "m", ids(2000), [1024]) == CacheResult(0, 1024, "explicit")
    assert cache.lookup("k", "m", ids(2000)) == CacheResult(1792, 0, "implicit")
    assert cache.lookup("k", "m", ids(2000), [5000]) == CacheResult()  # beyond the prompt


def test_explicit_memory_is_bounded() -> None:
    cache = PrefixCache(CacheConfig(max_entries=2, implicit=False), clock=Clock())
    for start in (0, 10_000, 20_000):
        cache.observe("k", "m", ids(1100, start=start), [1100])
    assert len(cache) == 2
    assert cache.lookup("k", "m", ids(1100, start=0), [1100]).cached_tokens == 0
    assert cache.lookup("k", "m", ids(1100, start=20_000), [1100]).cached_tokens == 1100


def test_completion_usage() -> None:
    usage = completion_usage(
        120,
        CacheResult(64, 0, "implicit"),
        reasoning_tokens=30,
        content_tokens=10,
        tool_call_tokens=5,
    )
    assert usage == Usage(
        prompt_tokens=120,
        completion_tokens=45,
        total_tokens=165,
        cached_tokens=64,
        cache_creation_tokens=0,
        reasoning_tokens=30,
    )
    assert usage.answer_tokens == 15
    assert completion_usage(7) == Usage(prompt_tokens=7, total_tokens=7)
