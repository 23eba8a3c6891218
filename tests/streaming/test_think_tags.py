"""``ThinkTagSplitter``: ``<think>`` reasoning left in ``content`` split back out, per choice.

Examples for each rule, then properties: for random reasoning ``r`` and answers ``a`` (texts full
of ``<``, ``</``, ``<thin``, ``>`` and newlines), cut into random chunks,

- ``ws + "<think>\\n" + r + "\\n</think>\\n\\n" + a`` gives reasoning ``r`` exactly and content
  ``a.lstrip("\\r\\n")`` (the line breaks right after ``</think>`` are dropped), in any mode;
- ``r + "\\n</think>\\n\\n" + a`` with thinking on and the closing-tag rule gives the same;
- ``ws + "<think>\\n" + r`` (unclosed) gives reasoning ``r`` and no content;
- a plain answer comes through unchanged, and with thinking off/None the content let through after
  every chunk is all of the text so far unless that text is leading whitespace plus a proper
  prefix of ``<think>`` (then none of it);
- with thinking off, reasoning and no content is the answer; with content, it stays reasoning;

and the result never depends on the chunking, every ``ReasoningDelta`` comes before every
``ContentDelta`` (no content carries reasoning), and the ``Finished`` comes last.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwenkit.streaming import ThinkTagSplitter, split_think_tags
from qwenkit.streaming.think_tags import CLOSE, OPEN, split_think_tags_sync
from qwenkit.types import (
    ContentDelta,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    ToolCallDelta,
    Usage,
    UsageReported,
)

Thinking = bool | None
MODES: tuple[Thinking, ...] = (True, False, None)


def run(
    chunks: Sequence[str],
    *,
    thinking: Thinking = None,
    reasoning: Sequence[str] = (),
    choice: int = 0,
    finish: bool = True,
    closing_tag: bool = False,
) -> list[Event]:
    events: list[Event] = [ReasoningDelta(text, choice) for text in reasoning]
    events += [ContentDelta(text, choice) for text in chunks]
    if finish:
        events.append(Finished("stop", choice))
    return split_think_tags_sync(events, thinking=thinking, closing_tag=closing_tag)


def texts(events: Sequence[Event], choice: int = 0) -> tuple[str, str]:
    """(reasoning, content) of ``choice``."""
    reasoning = "".join(
        e.text for e in events if isinstance(e, ReasoningDelta) and e.choice == choice
    )
    content = "".join(e.text for e in events if isinstance(e, ContentDelta) and e.choice == choice)
    return reasoning, content


def merged(events: Sequence[Event]) -> list[Event]:
    """Adjacent text deltas of one kind and choice joined (what does not depend on chunking)."""
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if (
            isinstance(event, ReasoningDelta | ContentDelta)
            and type(last) is type(event)
            and isinstance(last, ReasoningDelta | ContentDelta)
            and last.choice == event.choice
        ):
            out[-1] = type(event)(last.text + event.text, event.choice)
        else:
            out.append(event)
    return out


def assert_well_ordered(events: Sequence[Event]) -> None:
    kinds = [type(e) for e in events]
    assert all(e.text for e in events if isinstance(e, ReasoningDelta | ContentDelta))
    if ReasoningDelta in kinds and ContentDelta in kinds:
        assert max(i for i, k in enumerate(kinds) if k is ReasoningDelta) < kinds.index(
            ContentDelta
        )
    assert kinds[-1] is Finished


# -- examples --------------------------------------------------------------------------------------

LLAMA = "<think>\nsome reasoning \n</think>\n\nThe answer."
LLAMA_CHUNKS = [*"<think>\nsome reasoning \n", "<", "/", "t", "hi", "n", "k", ">", "\n", "\n"]


@pytest.mark.parametrize("thinking", MODES)
def test_a_leading_block_is_reasoning(thinking: Thinking) -> None:
    events = run([LLAMA], thinking=thinking)
    assert events == [
        ReasoningDelta("some reasoning "),
        ContentDelta("The answer."),
        Finished("stop"),
    ]
    streamed = run([*LLAMA_CHUNKS, "The", " answer."], thinking=thinking)
    assert merged(streamed) == events


def test_tags_split_at_every_boundary_hold_back_only_the_partial_tag() -> None:
    splitter = ThinkTagSplitter(thinking=None)
    assert splitter.feed(ContentDelta("  <")) == []
    assert splitter.feed(ContentDelta("th")) == []
    assert splitter.feed(ContentDelta("ink>")) == []
    assert splitter.feed(ContentDelta("\n")) == []  # the newline after <think> is dropped
    assert splitter.feed(ContentDelta("a < b")) == [ReasoningDelta("a < b")]
    assert splitter.feed(ContentDelta(" and\n")) == [ReasoningDelta(" and")]  # "\n" may end it
    assert splitter.feed(ContentDelta("</thi")) == []
    assert splitter.feed(ContentDelta("ng")) == [ReasoningDelta("\n</thing")]  # not the tag
    assert splitter.feed(ContentDelta("\n</")) == []
    assert splitter.feed(ContentDelta("think>\n")) == []
    assert splitter.feed(ContentDelta("\nAns")) == [ContentDelta("Ans")]
    assert splitter.feed(ContentDelta("wer")) == [ContentDelta("wer")]
    assert splitter.close() == []


def test_leading_whitespace_before_the_block_is_not_content() -> None:
    assert texts(run([" \n\t", "<think>r</think>a"])) == ("r", "a")


def test_whitespace_before_a_plain_answer_is_kept() -> None:
    assert texts(run(["\n\n", "  Hello"])) == ("", "\n\n  Hello")
    assert texts(run(["\n \n"])) == ("", "\n \n")


@pytest.mark.parametrize("thinking", MODES)
def test_an_unclosed_block_is_all_reasoning(thinking: Thinking) -> None:
    events = run(["<think>\nLet me add a thought"], thinking=thinking)
    assert events == [ReasoningDelta("Let me add a thought"), Finished("stop")]
    cut = run([*"<think>\nLet me add a thought\n</th"], thinking=thinking, finish=False)
    assert texts(cut) == ("Let me add a thought\n</th", "")  # the end of the stream, no Finished


def test_a_partial_open_tag_that_ends_the_answer_is_content() -> None:
    assert texts(run(["<thi"])) == ("", "<thi")
    assert texts(run(["  <"], finish=False)) == ("", "  <")


def test_tags_inside_the_answer_stay_content() -> None:
    answer = "Models write <think> and </think> around their reasoning."
    assert texts(run([f"<think>r</think>\n\n{answer}"])) == ("r", answer)
    for thinking in (False, None):
        assert texts(run([answer], thinking=thinking)) == ("", answer)
        assert texts(run(["Hi <think>x</think> y"], thinking=thinking)) == (
            "",
            "Hi <think>x</think> y",
        )


def test_only_newlines_after_the_close_tag_are_dropped() -> None:
    assert texts(run(["<think>r</think>\r\n\n  indented"])) == ("r", "  indented")
    assert texts(run(["<think>\n\n</think>\n\nA"])) == ("", "A")  # Qwen's empty block
    assert run(["<think>\n\n</think>\n\n"]) == [Finished("stop")]


def test_a_closing_tag_alone_ends_the_reasoning_with_thinking_on() -> None:
    text = "reasoning text\n</think>\n\nanswer"
    assert run([text], thinking=True, closing_tag=True) == [
        ReasoningDelta("reasoning text"),
        ContentDelta("answer"),
        Finished("stop"),
    ]
    chars = run(list(text), thinking=True, closing_tag=True)
    assert merged(chars) == run([text], thinking=True, closing_tag=True)
    for thinking in (False, None):  # only with thinking on
        assert texts(run([text], thinking=thinking, closing_tag=True)) == ("", text)
    assert texts(run([text], thinking=True)) == ("", text)  # and only when asked for


def test_thinking_on_holds_content_until_the_close_tag_or_the_end() -> None:
    splitter = ThinkTagSplitter(thinking=True, closing_tag=True)
    assert splitter.feed(ContentDelta("The answer")) == []
    assert splitter.feed(ContentDelta(" is 4.")) == []
    assert splitter.feed(Finished("stop")) == [ContentDelta("The answer is 4."), Finished("stop")]
    held = run(["no tag at all"], thinking=True, finish=False, closing_tag=True)
    assert texts(held) == ("", "no tag at all")


def test_by_default_a_thinking_answer_without_tags_streams_at_once() -> None:
    """The closing-tag rule is off unless asked for: an answer of a thinking call that did not
    think (or whose reasoning the server parsed) is not held back until the end."""
    splitter = ThinkTagSplitter(thinking=True)
    assert splitter.feed(ContentDelta("The answer")) == [ContentDelta("The answer")]
    assert splitter.feed(ContentDelta(" is 4.")) == [ContentDelta(" is 4.")]


def test_thinking_on_with_server_side_reasoning_streams_content_at_once() -> None:
    """A server with a reasoning parser sent reasoning_content: the content is the answer,
    even with the closing-tag rule on."""
    splitter = ThinkTagSplitter(thinking=True, closing_tag=True)
    assert splitter.feed(ReasoningDelta("thought")) == [ReasoningDelta("thought")]
    assert splitter.feed(ContentDelta("Answer")) == [ContentDelta("Answer")]
    assert splitter.feed(ContentDelta(" </think> too")) == [ContentDelta(" </think> too")]


def test_reasoning_without_content_is_the_answer_with_thinking_off() -> None:
    """vLLM #17609: thinking off, the answer in reasoning_content, content null."""
    splitter = ThinkTagSplitter(thinking=False)
    assert splitter.feed(ReasoningDelta("The answer")) == []
    assert splitter.feed(ReasoningDelta(" is 4.")) == []
    assert splitter.feed(Finished("stop")) == [ContentDelta("The answer is 4."), Finished("stop")]
    assert texts(run([], thinking=False, reasoning=["x"], finish=False)) == ("", "x")
    assert texts(run(["\n\n"], thinking=False, reasoning=["x"])) == ("", "x")


def test_reasoning_followed_by_content_stays_reasoning_with_thinking_off() -> None:
    splitter = ThinkTagSplitter(thinking=False)
    assert splitter.feed(ReasoningDelta("thought")) == []
    assert splitter.feed(ContentDelta("\n")) == []  # whitespace alone is not an answer yet
    assert splitter.feed(ContentDelta("Answer")) == [
        ReasoningDelta("thought"),
        ContentDelta("\nAnswer"),
    ]
    assert splitter.feed(ReasoningDelta("more")) == [ReasoningDelta("more")]


@pytest.mark.parametrize("thinking", [True, None])
def test_reasoning_passes_at_once_unless_thinking_is_off(thinking: Thinking) -> None:
    splitter = ThinkTagSplitter(thinking=thinking)
    assert splitter.feed(ReasoningDelta("r")) == [ReasoningDelta("r")]
    assert splitter.feed(Finished("stop")) == [Finished("stop")]


def test_a_tool_call_starts_the_answer() -> None:
    call = ToolCallDelta(index=0, id="call_1", name="get_weather")
    off = split_think_tags_sync([ReasoningDelta("r"), call, Finished("tool_calls")], thinking=False)
    assert off == [ReasoningDelta("r"), call, Finished("tool_calls")]
    on = split_think_tags_sync(
        [ContentDelta("Let me check."), call, Finished("tool_calls")],
        thinking=True,
        closing_tag=True,
    )
    assert on == [ContentDelta("Let me check."), call, Finished("tool_calls")]
    block = split_think_tags_sync(
        [ContentDelta("<think>r</think>\n\n"), call, Finished("tool_calls")], thinking=True
    )
    assert block == [ReasoningDelta("r"), call, Finished("tool_calls")]


def test_other_events_keep_their_order() -> None:
    started = ResponseStarted(id="chatcmpl-1", model="qwen3-32b")
    call = ToolCallDelta(index=0, id="call_1", name="f", arguments="{}")
    usage = UsageReported(Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3))
    events: list[Event] = [
        started,
        ContentDelta("<thi"),
        ContentDelta("nk>r"),
        ContentDelta("</think>\n\nA"),
        call,
        usage,
        Finished("tool_calls"),
    ]
    out = split_think_tags_sync(events, thinking=None)
    assert out == [
        started,
        ReasoningDelta("r"),
        ContentDelta("A"),
        call,
        usage,
        Finished("tool_calls"),
    ]
    held = split_think_tags_sync(
        [started, ContentDelta("A"), usage, Finished("stop")], thinking=True, closing_tag=True
    )
    assert held == [started, usage, ContentDelta("A"), Finished("stop")]  # released at the finish


def test_choices_are_independent() -> None:
    events: list[Event] = [
        ContentDelta("<think>", 0),
        ContentDelta("plain", 1),
        ContentDelta("r0</think>", 0),
        ReasoningDelta("answer in reasoning", 2),
        ContentDelta("\n\nA0", 0),
        Finished("stop", 1),
        Finished("stop", 0),
        Finished("stop", 2),
    ]
    out = split_think_tags_sync(events, thinking=False)
    assert texts(out, 0) == ("r0", "A0")
    assert texts(out, 1) == ("", "plain")
    assert texts(out, 2) == ("", "answer in reasoning")
    assert [e for e in out if isinstance(e, Finished)] == [
        Finished("stop", 1),
        Finished("stop", 0),
        Finished("stop", 2),
    ]


def test_content_after_the_finish_passes_through() -> None:
    splitter = ThinkTagSplitter(thinking=True)
    splitter.feed(Finished("stop"))
    assert splitter.feed(ContentDelta("<think>x")) == [ContentDelta("<think>x")]
    assert splitter.close() == []


@pytest.mark.anyio
async def test_the_async_form_splits_and_closes_its_source() -> None:
    closed: list[bool] = []

    async def source() -> AsyncIterator[Event]:
        try:
            for text in LLAMA_CHUNKS:
                yield ContentDelta(text)
            yield ContentDelta("The answer.")
        finally:
            closed.append(True)

    events = [event async for event in split_think_tags(source(), thinking=True)]
    assert texts(events) == ("some reasoning ", "The answer.")
    early = split_think_tags(source(), thinking=None)
    assert await early.__anext__() == ReasoningDelta("s")
    await early.aclose()
    assert closed == [True, True]


# -- properties ------------------------------------------------------------------------------------

_TRICKY = st.sampled_from(
    ["<", "</", "<thin", "<think", "</think", "think>", ">", "\n", "\r", " ", "t", "/", "<think>"]
)
_TEXT = st.lists(
    _TRICKY | st.text(st.characters(exclude_categories=["Cs"]), max_size=4), max_size=12
).map("".join)
_REASONING = _TEXT.map(lambda text: text.replace(CLOSE, "</ think>"))
"""Reasoning never holds ``</think>`` (the first one ends it); the replacement cannot make one."""
_LEADING = st.text(" \t\n", max_size=3)


def _is_plain(text: str) -> bool:
    return not text.lstrip().startswith(OPEN)


_PLAIN = _TEXT.filter(_is_plain)


@st.composite
def chunked(draw: st.DrawFn, text: str) -> list[str]:
    """``text`` cut at random points (empty pieces included)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _check_chunkings(
    text: str,
    chunks: list[str],
    *,
    thinking: Thinking,
    expected: tuple[str, str],
    closing_tag: bool = False,
) -> None:
    whole = run([text], thinking=thinking, closing_tag=closing_tag)
    for pieces in (chunks, list(text)):
        events = run(pieces, thinking=thinking, closing_tag=closing_tag)
        assert texts(events) == expected
        assert merged(events) == merged(whole)
        assert_well_ordered(events)


@settings(max_examples=300)
@given(st.data(), _LEADING, _REASONING, _TEXT, st.sampled_from(MODES))
def test_a_closed_block_splits_into_its_reasoning_and_answer(
    data: st.DataObject, leading: str, reasoning: str, answer: str, thinking: Thinking
) -> None:
    text = f"{leading}<think>\n{reasoning}\n</think>\n\n{answer}"
    _check_chunkings(
        text,
        data.draw(chunked(text)),
        thinking=thinking,
        closing_tag=data.draw(st.booleans()),
        expected=(reasoning, answer.lstrip("\r\n")),
    )


@settings(max_examples=300)
@given(st.data(), _REASONING.filter(_is_plain), _TEXT)
def test_a_closing_tag_alone_splits_with_thinking_on(
    data: st.DataObject, reasoning: str, answer: str
) -> None:
    text = f"{reasoning}\n</think>\n\n{answer}"
    _check_chunkings(
        text,
        data.draw(chunked(text)),
        thinking=True,
        closing_tag=True,
        expected=(reasoning, answer.lstrip("\r\n")),
    )


@settings(max_examples=300)
@given(st.data(), _LEADING, _REASONING, st.sampled_from(MODES))
def test_an_unclosed_block_is_all_reasoning_however_cut(
    data: st.DataObject, leading: str, reasoning: str, thinking: Thinking
) -> None:
    text = f"{leading}<think>\n{reasoning}"
    _check_chunkings(
        text,
        data.draw(chunked(text)),
        thinking=thinking,
        closing_tag=data.draw(st.booleans()),
        expected=(reasoning, ""),
    )


@settings(max_examples=300)
@given(st.data(), _PLAIN.map(lambda text: text.replace(CLOSE, "</ think>")), st.sampled_from(MODES))
def test_a_plain_answer_comes_through_unchanged(
    data: st.DataObject, answer: str, thinking: Thinking
) -> None:
    _check_chunkings(answer, data.draw(chunked(answer)), thinking=thinking, expected=("", answer))


@settings(max_examples=300)
@given(st.data(), _PLAIN, st.sampled_from((False, None)))
def test_a_plain_answer_is_held_back_at_most_by_a_partial_open_tag(
    data: st.DataObject, answer: str, thinking: Thinking
) -> None:
    splitter = ThinkTagSplitter(thinking=thinking)
    fed = passed = ""
    for piece in data.draw(chunked(answer)):
        fed += piece
        out = splitter.feed(ContentDelta(piece))
        assert all(isinstance(e, ContentDelta) for e in out)
        passed += "".join(e.text for e in out if isinstance(e, ContentDelta))
        undecided = OPEN.startswith(fed.lstrip())  # leading whitespace and a partial <think>
        assert passed == ("" if undecided else fed)
    out = splitter.feed(Finished("stop"))
    assert passed + "".join(e.text for e in out if isinstance(e, ContentDelta)) == answer


@settings(max_examples=200)
@given(
    st.data(),
    st.lists(_TEXT.filter(bool), min_size=1, max_size=5),
    _PLAIN.map(lambda text: text.replace(CLOSE, "</ think>")),
)
def test_reasoning_is_the_answer_only_without_content_with_thinking_off(
    data: st.DataObject, reasoning: list[str], answer: str
) -> None:
    whole = "".join(reasoning)
    alone = run([], thinking=False, reasoning=reasoning)
    assert alone == [ContentDelta(whole), Finished("stop")]
    chunks = data.draw(chunked(answer))
    events = run(chunks, thinking=False, reasoning=reasoning)
    if answer.strip():
        assert texts(events) == (whole, answer)
    else:  # whitespace only: no answer, the reasoning was it
        assert texts(events) == ("", whole)
    assert_well_ordered(events)
    for thinking in (True, None):  # only with thinking off
        assert texts(run([], thinking=thinking, reasoning=reasoning)) == (whole, "")
