"""``Conversation`` against the emulator in process: what is sent, to which model, how often."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from qwenkit._core.policies.history import validate_history
from qwenkit._exceptions import UsageError
from qwenkit.agents.conversation import ContextOverflowError, Conversation
from qwenkit.catalog import SUMMARISE, Router, get_model
from qwenkit.client._async import AsyncQwen
from qwenkit.client._sync import Qwen
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.tokens import count_messages
from qwenkit.types import (
    AnyMessage,
    AssistantMessage,
    FunctionCall,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    parse_messages,
)

KEY = "sk-test-conversation"
SYSTEM = "You are a careful assistant for a bicycle repair shop."
PREFIX = "Earlier in this conversation:"


@pytest.fixture
def app() -> Starlette:
    return create_app(EmulatorConfig())


@asynccontextmanager
async def connect(app: Starlette) -> AsyncIterator[AsyncQwen]:
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(api_key=KEY, base_url="http://emulator", http_client=http) as client,
    ):
        yield client


async def logged(app: Starlette) -> list[dict[str, Any]]:
    """The emulator's request log (``GET /_emulator/requests``)."""
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as control:
        response = await control.get("/_emulator/requests")
    entries: list[dict[str, Any]] = response.json()["requests"]
    return entries


def summary_calls(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cheap = Router().route(SUMMARISE).model
    return [entry for entry in entries if entry["model"] == cheap]


def turns(count: int, first: int = 0) -> list[AnyMessage]:
    """``count`` question/answer pairs of about 40 tokens per message."""
    pairs: list[AnyMessage] = []
    for n in range(first, first + count):
        pairs.append(
            UserMessage(content=f"Question {n}: how do I adjust the rear derailleur? " * 4)
        )
        pairs.append(AssistantMessage(content=f"Answer {n}: turn the barrel adjuster slowly. " * 4))
    return pairs


def filled(client: AsyncQwen | Qwen | None, pairs: int = 10, **options: Any) -> Conversation:
    conversation = Conversation(
        system=SYSTEM, client=client, budget_tokens=600, summary_max_tokens=48, **options
    )
    conversation.extend(turns(pairs))
    conversation.add_user("And the front one?")
    return conversation


@pytest.mark.anyio
async def test_truncation_keeps_the_system_message_and_the_last_six(app: Starlette) -> None:
    async with connect(app) as client:
        conversation = filled(client)
        history = conversation.messages
        assert conversation.count().total > 600
        fitted = await conversation.afit()
    assert fitted[0] == history[0]
    assert isinstance(fitted[1], SystemMessage)
    assert fitted[1].text.startswith(PREFIX)
    assert len(fitted[1].text) > len(PREFIX) + 10
    assert fitted[2:] == history[-6:]  # verbatim
    assert conversation.count(fitted).total <= 600
    plan = conversation.last_plan
    assert plan is not None
    assert plan.middle == tuple(range(1, len(history) - 6))
    (entry,) = await logged(app)  # only the summary call so far
    assert entry["model"] == Router().route(SUMMARISE).model == conversation.summary_model
    assert entry["model"] in ("qwen-flash", "qwen-turbo")
    body = entry["body"]
    assert body["max_tokens"] == 48
    assert body.get("enable_thinking") in (False, None)
    summarised = body["messages"][-1]["content"]
    assert "Question 0" in summarised
    assert "Question 9" not in summarised  # the kept turns are not summarised


@pytest.mark.anyio
async def test_send_calls_the_model_with_the_fitted_messages(app: Starlette) -> None:
    async with connect(app) as client:
        conversation = filled(client)
        before = conversation.messages
        result = await conversation.asend(None, max_tokens=30)
    assert conversation.messages == [*before, result.message]
    entries = await logged(app)
    assert [e["model"] for e in entries] == [conversation.summary_model, conversation.model]
    sent = parse_messages(entries[-1]["body"]["messages"])
    assert sent[0] == before[0]
    assert sent[1].text.startswith(PREFIX)
    assert [(m.role, m.text) for m in sent[2:]] == [(m.role, m.text) for m in before[-6:]]


@pytest.mark.anyio
async def test_the_summary_is_cached_across_turns(app: Starlette) -> None:
    async with connect(app) as client:
        conversation = Conversation(
            system=SYSTEM, client=client, budget_tokens=900, summary_max_tokens=48
        )
        conversation.extend(turns(10))
        for n in range(3):
            await conversation.asend(f"Follow-up {n}: and the chain?", max_tokens=20)
            plan = conversation.last_plan
            assert plan is not None
            assert plan.reused == (n > 0)
        assert len(summary_calls(await logged(app))) == 1  # not recomputed every turn
        await conversation.afit()  # the same middle again: from the cache
        assert len(summary_calls(await logged(app))) == 1
        conversation.extend(turns(6, first=10))  # the old boundary no longer fits: moved forward
        await conversation.asend("Last one.", max_tokens=20)
    calls = summary_calls(await logged(app))
    assert len(calls) == 2
    incremental = calls[1]["body"]["messages"][-1]["content"]
    assert incremental.startswith("Summary so far:\n")
    assert "Question 0:" not in incremental  # only the newly covered messages
    assert "Question 10:" in incremental


@pytest.mark.anyio
async def test_a_tool_group_at_the_boundary_is_never_split(app: Starlette) -> None:
    calls = [
        ToolCall(id=f"call-{n}", function=FunctionCall(name="stock", arguments='{"part": 1}'))
        for n in range(4)
    ]
    async with connect(app) as client:
        conversation = Conversation(
            system=SYSTEM, client=client, budget_tokens=700, summary_max_tokens=48
        )
        conversation.extend(turns(8))
        conversation.add_user("Are the parts in stock?")
        conversation.append(AssistantMessage(content=None, tool_calls=calls))
        for call in calls:
            conversation.add_tool_result(call.id, f"part {call.id}: 3 in stock " * 5)
        conversation.add_assistant(AssistantMessage(content="All four parts are in stock."))
        conversation.add_user("Great, order them.")
        history = conversation.messages
        fitted = await conversation.afit()
    validate_history(fitted)  # no orphan tool message
    assert fitted[2:] == history[-7:]  # the last six start inside the group: the whole group
    owner = fitted[2]
    assert isinstance(owner, AssistantMessage)
    assert owner.tool_calls == calls
    assert all(isinstance(m, ToolMessage) for m in fitted[3:7])


@pytest.mark.anyio
async def test_refusing_to_summarise_raises(app: Starlette) -> None:
    async with connect(app) as client:
        conversation = filled(client, summarise=False)
        with pytest.raises(ContextOverflowError, match="budget of 600") as caught:
            await conversation.afit()
        size = len(conversation.messages)
        with pytest.raises(ContextOverflowError):
            await conversation.asend("one more")
    assert caught.value.tokens == conversation.count().total > caught.value.budget == 600
    assert len(conversation.messages) == size  # the failed send left the history as it was
    assert await logged(app) == []  # nothing sent


@pytest.mark.anyio
async def test_last_messages_too_big_even_with_a_summary(app: Starlette) -> None:
    async with connect(app) as client:
        conversation = filled(client)
        conversation.add_assistant(AssistantMessage(content="spoke " * 700))
        with pytest.raises(ContextOverflowError, match="exceed the budget of 600"):
            await conversation.afit()
    assert await logged(app) == []


@pytest.mark.anyio
async def test_token_counts_and_default_budget(app: Starlette) -> None:
    async with connect(app) as client:
        conversation = Conversation(system=SYSTEM, client=client)
        conversation.extend(turns(3))
        assert conversation.model == "qwen-plus"  # the client's default
        profile = get_model("qwen-plus")
        assert conversation.count() == count_messages(conversation.messages, "qwen-plus")
        assert conversation.budget() == profile.max_input_tokens - profile.default_max_tokens
        assert conversation.budget(max_tokens=100) == profile.max_input_tokens - 100
        conversation.add_user("Thanks!")
        assert await conversation.afit() == conversation.messages  # fits: everything
        routed = Conversation(client=client, task="code")
        route = Router().route("code")
        assert routed.model == route.model
        assert routed.budget() == get_model(route.model).max_input_tokens - route.max_tokens
    assert await logged(app) == []


def test_the_sync_client(app: Starlette) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app))
    with Qwen(api_key=KEY, base_url="http://emulator", http_client=http) as client:
        conversation = filled(client)
        result = conversation.send(None, max_tokens=20)
        assert conversation.messages[-1] == result.message
        assert conversation.last_plan is not None

        async def from_a_loop() -> list[AnyMessage]:
            return await conversation.afit()  # the async API over a Qwen: worker thread

        fitted = asyncio.run(from_a_loop())
        assert fitted[1].text.startswith(PREFIX)
    asyncio.run(http.aclose())
    entries = asyncio.run(logged(app))
    assert len(summary_calls(entries)) == 1


@pytest.mark.anyio
async def test_sync_methods_need_a_sync_client(app: Starlette) -> None:
    async with connect(app) as client:
        conversation = filled(client)
        with pytest.raises(UsageError, match="asynchronous"):
            conversation.fit()
        with pytest.raises(UsageError, match="set on the Conversation"):
            await conversation.asend("hi", model="qwen-max")
    assert filled(None, pairs=1).fit()[0].text == SYSTEM  # fits: no client needed
