"""``Agent``: the tool-calling loop, driven through a client (the decisions are in ``step``).

``Agent(tools, client=AsyncQwen() or Qwen(), model=..., ...)`` offers the tools on every
request and answers the model's calls until it answers in words: ``await agent.arun("Should I bring an
umbrella?")`` returns an ``AgentResult``; ``agent.run(...)`` does the same from synchronous code
(on a ``Qwen``'s runner, else on the agent's own: any thread, even inside a running event loop);
``agent.astream(...)`` yields ``AgentEvent``s for a UI. A client passed in is the caller's to
close; with ``client=None`` the agent makes an ``AsyncQwen`` from the environment and closes it in
``close()`` / ``aclose()`` (or ``with`` / ``async with``).

Each round sends the history with the tool definitions, ``tool_choice="auto"`` (``"none"`` once
the answer is forced), ``parallel_tool_calls=parallel`` and thinking off, unless it is the final
request and ``thinking=True`` (the only thinking request: the SDK streams it upstream; its
reasoning is ``result.reasoning``, never the answer). The calls of one message run concurrently
(``parallel``: an ``anyio`` task group under a ``CapacityLimiter(max_concurrency)``) or in turn,
each within ``tool_timeout`` seconds (a timed-out call is an error result for the model, not
counted against the tool's error budget). The guards and history rules are ``step``'s. Each run
starts with ``toolbox.reset_errors()``. In ``astream`` every request whose answer may be the
final one streams (``client.stream``; content deltas as ``AnswerDelta``); ``arun`` uses
``client.chat``. Tool events come in the order of the calls, once the round's calls are done.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import anyio

from qwenkit._core.runner import Runner
from qwenkit._exceptions import UsageError
from qwenkit.agents._errors import ToolErrorBudgetExceeded
from qwenkit.agents.result import (
    AgentDidNotConverge,
    AgentEvent,
    AgentResult,
    AgentToolFailure,
    AnswerDelta,
    Finished,
    ReasoningDelta,
    RoundStarted,
    RoundUsage,
    ToolCalled,
    ToolResult,
    ToolReturned,
)
from qwenkit.agents.step import (
    Fail,
    Finish,
    Limits,
    Request,
    RunTools,
    Step,
    after_reply,
    after_tools,
    begin,
)
from qwenkit.agents.tools import FunctionTool, Toolbox
from qwenkit.catalog import TaskKind
from qwenkit.client._result import AsyncChatStream, ChatResult
from qwenkit.types import (
    AnyMessage,
    AssistantMessage,
    ContentDelta,
    SystemMessage,
    ToolCall,
    UserMessage,
    parse_messages,
)
from qwenkit.types import ReasoningDelta as UpstreamReasoning

__all__ = ["Agent", "AsyncChatClient", "Input", "SyncChatClient"]

Input = str | Iterable[AnyMessage | Mapping[str, Any]]
"""A user prompt, or a conversation (canonical messages and/or dicts) ending in a user turn."""


class AsyncChatClient(Protocol):
    """What the loop needs of a client: ``AsyncQwen`` (``qwenkit.agents`` sits below the
    clients, so it names none of them)."""

    async def chat(self, messages: Sequence[AnyMessage], **params: Any) -> ChatResult: ...
    def stream(self, messages: Sequence[AnyMessage], **params: Any) -> AsyncChatStream: ...


@runtime_checkable
class SyncChatClient(Protocol):
    """A synchronous client wrapping an async one: ``Qwen`` (its runner is reused by ``run``)."""

    @property
    def aio(self) -> AsyncChatClient: ...


_LOOP_PARAMS = frozenset({"tools", "tool_choice", "parallel_tool_calls", "stream", "messages"})


class Agent:
    """The tool-calling loop; see the module docstring. ``client``: an ``AsyncQwen`` or a
    ``Qwen``; ``chat_params`` (``temperature``, ``max_tokens``...) go with every request."""

    def __init__(
        self,
        tools: Toolbox | Iterable[FunctionTool[..., Any] | Callable[..., Any]],
        *,
        client: AsyncChatClient | SyncChatClient | None = None,
        model: str | None = None,
        task: TaskKind | str | None = None,
        system: str | None = None,
        max_rounds: int = 8,
        force_answer_after: int | None = 3,
        parallel: bool = True,
        max_concurrency: int = 4,
        tool_timeout: float | None = 30,
        thinking: bool = False,
        **chat_params: Any,
    ) -> None:
        reserved = _LOOP_PARAMS.intersection(chat_params)
        if reserved:
            raise UsageError(f"{', '.join(sorted(reserved))}: set by the agent loop")
        if max_concurrency < 1 or (tool_timeout is not None and tool_timeout <= 0):
            raise UsageError("max_concurrency >= 1 and tool_timeout > 0 (or None), please")
        self.toolbox = tools if isinstance(tools, Toolbox) else Toolbox(tools)
        self.limits = Limits(max_rounds, force_answer_after, thinking)
        self.model, self.task, self.system = model, task, system
        self.parallel, self.tool_timeout = parallel, tool_timeout
        self.max_concurrency = max_concurrency
        self.chat_params = chat_params
        self._owns_client = client is None
        if client is None:
            from qwenkit.client._async import (
                AsyncQwen,  # configured from the environment (Settings)
            )

            client = AsyncQwen()
        if isinstance(client, SyncChatClient):
            self.client = client.aio
            runner = getattr(client, "_runner", None)  # Qwen's: its pool lives on that loop
            self._runner = runner if isinstance(runner, Runner) else None
        else:
            self.client, self._runner = client, None
        self._owns_runner = False

    async def arun(self, message: Input) -> AgentResult:
        """Run the loop to an answer (``AgentDidNotConverge``, ``AgentToolFailure`` if none)."""
        events = self._events(message, stream=False, reasoning=False)
        try:
            async for event in events:
                if isinstance(event, Finished):
                    return event.result
        finally:
            await events.aclose()
        raise AssertionError("the loop ended without Finished")  # pragma: no cover

    def run(self, message: Input) -> AgentResult:
        """``arun`` from synchronous code, on the client's runner (see the module docstring)."""
        return self._sync().run(self.arun(message))

    def astream(
        self, message: Input, *, reasoning: bool = False
    ) -> AsyncGenerator[AgentEvent, None]:
        """The run as events, ``Finished(result)`` last. ``reasoning=True`` adds the final
        answer's thinking as ``ReasoningDelta``s. Close it (``aclose``) if you stop early."""
        return self._events(message, stream=True, reasoning=reasoning)

    def _start(self, message: Input) -> Step:
        if isinstance(message, str):
            messages: list[AnyMessage] = [UserMessage(content=message)]
        else:
            messages = parse_messages(message)
        if self.system is not None and not (messages and messages[0].role == "system"):
            messages.insert(0, SystemMessage(content=self.system))
        return begin(messages, self.limits)

    async def _events(
        self, message: Input, *, stream: bool, reasoning: bool
    ) -> AsyncGenerator[AgentEvent, None]:
        self.toolbox.reset_errors()
        step, rounds = self._start(message), list[RoundUsage]()
        reasoning_text: str | None = None
        while True:
            action, state = step.action, step.state
            if isinstance(action, Request):
                yield RoundStarted(action.round, action.final)
                if stream and (action.final or not self.limits.thinking):
                    async with self.client.stream(action.messages, **self._params(action)) as s:
                        async for event in s:
                            if isinstance(event, ContentDelta) and event.choice == 0:
                                yield AnswerDelta(event.text, action.round)
                            elif isinstance(event, UpstreamReasoning) and reasoning:
                                yield ReasoningDelta(event.text)
                        result = s.result()
                else:
                    result = await self.client.chat(action.messages, **self._params(action))
                rounds.append(RoundUsage.of(action.round, result))
                reasoning_text = result.reasoning if action.thinking else None
                step = after_reply(state, result.message)
            elif isinstance(action, RunTools):
                for call in action.calls:
                    cached = call.id in action.cached
                    yield ToolCalled(action.round, call.id, call.name, call.arguments, cached)
                try:
                    results = await self._execute(action.execute)
                except ToolErrorBudgetExceeded as exc:
                    raise AgentToolFailure(
                        str(exc),
                        tool=exc.tool,
                        transcript=state.messages,
                        trace=state.trace,
                        rounds=rounds,
                    ) from exc
                step = after_tools(state, results)
                answered = len(action.calls)
                answers = step.state.messages[-answered:]
                for item, answer in zip(step.state.trace[-answered:], answers, strict=True):
                    yield ToolReturned.of(item, answer.text)
            elif isinstance(action, Finish):
                yield Finished(
                    AgentResult(
                        answer=action.answer,
                        transcript=[*state.messages, AssistantMessage(content=action.answer)],
                        rounds=rounds,
                        trace=list(state.trace),
                        notes=state.notes,
                        reasoning=reasoning_text,
                    )
                )
                return
            else:
                assert isinstance(action, Fail)
                raise AgentDidNotConverge(
                    action.reason, transcript=state.messages, trace=state.trace, rounds=rounds
                )

    def _params(self, request: Request) -> dict[str, Any]:
        params = {**self.chat_params, "model": self.model, "task": self.task}
        params["thinking"] = request.thinking
        if definitions := self.toolbox.definitions():
            params.update(tools=definitions, tool_choice=request.tool_choice)
            params["parallel_tool_calls"] = self.parallel
        return params

    async def _execute(self, calls: tuple[ToolCall, ...]) -> list[ToolResult]:
        """Every call's result, in the order of the calls (whatever order they finish in)."""
        results: dict[int, ToolResult] = {}
        if not self.parallel or len(calls) < 2:
            for index, call in enumerate(calls):
                results[index] = await self._dispatch(call)
            return [results[index] for index in range(len(calls))]
        limiter = anyio.CapacityLimiter(self.max_concurrency)
        failures: list[ToolErrorBudgetExceeded] = []

        async def one(index: int, call: ToolCall, scope: anyio.CancelScope) -> None:
            async with limiter:
                try:
                    results[index] = await self._dispatch(call)
                except ToolErrorBudgetExceeded as exc:
                    failures.append(exc)
                    scope.cancel()  # the run stops: no need to wait for the others

        async with anyio.create_task_group() as group:
            for index, call in enumerate(calls):
                group.start_soon(one, index, call, group.cancel_scope)
        if failures:
            raise failures[0]
        return [results[index] for index in range(len(calls))]

    async def _dispatch(self, call: ToolCall) -> ToolResult:
        started = time.perf_counter()
        with anyio.move_on_after(self.tool_timeout):
            return await self.toolbox.dispatch(call)
        seconds = f"{self.tool_timeout:g}"
        return ToolResult(
            call.id,
            call.name,
            f"Tool {call.name!r} timed out (no result within {seconds} s).",
            False,
            f"ToolTimeoutError: no result within {seconds} s (the agent's tool_timeout)",
            time.perf_counter() - started,
        )

    def _sync(self) -> Runner:
        if self._runner is None:
            self._runner, self._owns_runner = Runner("qwenkit-agent"), True
        return self._runner

    async def aclose(self) -> None:
        """Close the client the agent made itself (``client=None``); a client passed in is the
        caller's to close. Use this (or ``async with``) after ``arun``/``astream``."""
        if self._owns_client:
            self._owns_client = False
            await _aclose(self.client)

    def close(self) -> None:
        """Close what the agent made: its own runner (made by ``run`` for an async client) and,
        with ``client=None``, its client (closed on the runner whose loop used it)."""
        if self._owns_client and self._runner is not None:
            self._runner.run(self.aclose())
        if self._owns_runner and self._runner is not None:
            self._runner.close()
            self._runner, self._owns_runner = None, False

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        names = ", ".join(item.name for item in self.toolbox)
        return f"<Agent tools=[{names}] model={self.model!r} {self.limits}>"


async def _aclose(client: AsyncChatClient) -> None:
    aclose = getattr(client, "aclose", None)
    if aclose is not None:
        await aclose()
