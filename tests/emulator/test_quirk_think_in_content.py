"""The ``think_in_content`` quirk: reasoning inline in ``content``, on the compatible wire only.

In the engine (the answer moved, noted, untouched elsewhere) and in ``render.plan_events`` (the
tags cut into 1-3 character pieces, the rest as usual; the text joins back to the content).
"""

from __future__ import annotations

from typing import Any, Literal

from qwenkit.catalog import get_model
from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.engine import EngineContext, ScenarioRule, build_engine
from qwenkit.emulator.generation import Generation
from qwenkit.emulator.render import count_output, make_usage, plan_events
from qwenkit.tokens import get_tokenizer
from qwenkit.types import ChatRequest, ContentDelta, ReasoningDelta, ResponseStarted

ASK = [{"role": "user", "content": "Why is the sky blue?"}]


def run(
    *,
    wire: Literal["compat", "native"] = "compat",
    thinking: bool = True,
    quirk: bool = True,
    rules: tuple[ScenarioRule, ...] = (),
) -> Generation:
    request = ChatRequest(model="qwen3-32b", messages=ASK)
    config = EmulatorConfig(quirks={"think_in_content": quirk})
    context = EngineContext(get_model("qwen3-32b"), thinking, config, 7, 0, wire)
    return build_engine(config, rules).generate(request, context)


def test_the_reasoning_moves_into_the_content_with_its_tags() -> None:
    plain = run(quirk=False)
    inline = run()
    assert plain.reasoning
    assert plain.notes == ()
    assert inline.reasoning == ""
    assert inline.content == f"<think>\n{plain.reasoning}\n</think>\n\n{plain.content}"
    assert inline.notes == ("think_in_content",)


def test_only_on_the_compatible_wire_and_only_with_reasoning() -> None:
    assert run(wire="native") == run(wire="native", quirk=False)
    no_thinking = run(thinking=False)
    assert no_thinking.reasoning == ""
    assert "<think>" not in no_thinking.content
    assert no_thinking.notes == ()


def test_a_rule_without_quirks_keeps_its_reasoning() -> None:
    data: dict[str, Any] = {"text": "Rayleigh.", "reasoning": "Short waves scatter."}
    quiet = run(rules=(ScenarioRule.model_validate({**data, "quirks": False}),))
    assert (quiet.reasoning, quiet.content) == ("Short waves scatter.", "Rayleigh.")
    loud = run(rules=(ScenarioRule.model_validate(data),))
    assert loud.content == "<think>\nShort waves scatter.\n</think>\n\nRayleigh."


def test_the_stream_cuts_the_tags_into_small_pieces() -> None:
    generation = run()
    tokenizer = get_tokenizer("qwen")
    out = count_output(tokenizer, generation)
    assert out.reasoning == 0
    usage = make_usage(prompt=9, completion=out.completion, reasoning=out.reasoning)
    plan = plan_events(
        generation,
        tokenizer=tokenizer,
        chunk_tokens=1,
        usage=usage,
        started=ResponseStarted("chatcmpl-1", "qwen3-32b"),
        cumulative=False,
    )
    events = [event for event, _ in plan]
    assert not any(isinstance(e, ReasoningDelta) for e in events)
    pieces = [e.text for e in events if isinstance(e, ContentDelta)]
    assert "".join(pieces) == generation.content
    assert pieces[:4] == ["<", "th", "ink", ">"]
    close = pieces.index("/t") - 1
    assert pieces[close : close + 5] == ["<", "/t", "hin", "k", ">"]
    plain = plan_events(
        run(quirk=False),
        tokenizer=tokenizer,
        chunk_tokens=1,
        usage=usage,
        started=ResponseStarted("chatcmpl-1", "qwen3-32b"),
        cumulative=False,
    )
    plain_content = [e.text for e, _ in plain if isinstance(e, ContentDelta)]
    assert pieces[-len(plain_content) :] == plain_content  # the answer cut as usual
