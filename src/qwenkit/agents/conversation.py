"""``Conversation``: a chat history that validates every append and fits the window before a call.

History rules. Every ``append``/``extend`` (and ``add_user``, ``add_assistant``,
``add_tool_result``) checks the history *as a complete prefix* with the SDK's rules
(``validate_history``): no orphan tool result, results in the order of the calls, JSON arguments,
nothing but tool results after an assistant message with unanswered calls. Those calls may be
answered by later appends; completeness (every call answered) is required only when fitting or
sending. A rejected message raises ``HistoryError`` and is not appended.

Fitting (``afit``/``fit``, run by ``asend``/``send``). Tokens are counted with the model's Qwen
tokenizer (``count_messages``). A history within the budget (default: the model's max input minus
the answer's ``max_tokens``) is sent whole. Otherwise the first system message and the last
``keep_last`` messages are sent verbatim (extended backwards so a tool-call group is never split,
see ``qwenkit.agents._window``) and the messages between them are replaced by ONE system message
"Earlier in this conversation: <summary>", written by a cheap model (the catalog's ``summarise``
route, ``thinking=False``, ``max_tokens=summary_max_tokens``). Summaries are cached by a hash of
the messages they cover; the last one is reused while it plus everything after it fits (most
turns make no summary call, and the prompt prefix stays stable for the service's cache), then
moved forward incrementally (previous summary + newly covered messages). ``summarise=False``
(code-context work, where a lossy summary is worse than an error) raises ``ContextOverflowError``
instead, as does a history whose system message + summary + last messages exceed the budget.

Clients: ``AsyncQwen`` (``afit``/``asend``) or ``Qwen`` (all methods; async ones use a thread).
With ``client=None`` a ``Qwen`` is made from the environment the first time one is needed (a
summary or a send), and ``close()`` closes it; fits that need no summary never make one.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

from qwenkit._core.policies.history import validate_history
from qwenkit._exceptions import UsageError
from qwenkit.agents import _window
from qwenkit.agents._window import ContextOverflowError, WindowPlan
from qwenkit.agents.result import ToolResult
from qwenkit.catalog import SUMMARISE, Catalog, ModelProfile, Router, default_catalog
from qwenkit.client._result import ChatResult
from qwenkit.tokens import TokenCount, count_messages
from qwenkit.tokens.prompt_lint import warn_on_dynamic_system_prompt
from qwenkit.types import (
    AnyMessage,
    AssistantMessage,
    Content,
    SystemMessage,
    Tool,
    ToolMessage,
    UserMessage,
    parse_message,
    parse_messages,
)

__all__ = ["ContextOverflowError", "Conversation"]

SUMMARY_PREFIX = "Earlier in this conversation: "
_FIXED = frozenset({"model", "task", "messages"})
Tools = list[Tool | Mapping[str, Any]] | None


class AsyncChatClient(Protocol):
    """What ``Conversation`` needs of ``AsyncQwen``."""

    async def chat(self, messages: list[AnyMessage], **params: Any) -> ChatResult: ...


class SyncChatClient(Protocol):
    """What ``Conversation`` needs of ``Qwen``."""

    def chat(self, messages: list[AnyMessage], **params: Any) -> ChatResult: ...


class Conversation:
    """A chat history fitted to the model's window before each call (see the module docstring)."""

    def __init__(
        self,
        *,
        system: str | None = None,
        model: str | None = None,
        task: str | None = None,
        client: AsyncChatClient | SyncChatClient | None = None,
        budget_tokens: int | None = None,
        keep_last: int = 6,
        summarise: bool = True,
        summary_model: str | None = None,
        summary_max_tokens: int = 512,
    ) -> None:
        if keep_last < 1:
            raise UsageError(f"keep_last must be at least 1, got {keep_last}")
        self.client = client
        self._owns_client = False
        sdk = getattr(client, "aio", client)  # a Qwen drives an AsyncQwen: its catalog and router
        catalog, router = getattr(sdk, "catalog", None), getattr(sdk, "router", None)
        self.catalog = catalog if isinstance(catalog, Catalog) else default_catalog()
        self.router = router if isinstance(router, Router) else Router(self.catalog)
        self.task, self._model_arg = task, model
        self.model = model or (self.router.route(task).model if task else _default_model(sdk))
        self.profile: ModelProfile | None = (
            self.catalog.get(self.model) if self.model in self.catalog else None
        )
        self.budget_tokens, self.keep_last, self.summarise = budget_tokens, keep_last, summarise
        self.summary_model = summary_model or self.router.route(SUMMARISE).model
        self.summary_max_tokens = summary_max_tokens
        self.last_plan: WindowPlan | None = None
        """The plan of the last fit that had to summarise (``None``: the history was sent)."""
        self._messages: list[AnyMessage] = [SystemMessage(content=system)] if system else []
        self._summaries = _window.SummaryMemory()
        self._linted = False

    @property
    def messages(self) -> list[AnyMessage]:
        """The full history (a copy)."""
        return list(self._messages)

    def append(self, message: AnyMessage | Mapping[str, Any]) -> None:
        self.extend([message])

    def extend(self, messages: Iterable[AnyMessage | Mapping[str, Any]]) -> None:
        """Append messages after checking the resulting history (``HistoryError`` otherwise)."""
        candidate = [*self._messages, *parse_messages(messages)]
        if candidate:
            _window.check_prefix(candidate)
        self._messages = candidate

    def add_user(self, text: Content) -> None:
        self.append(UserMessage(content=text))

    def add_assistant(self, result: ChatResult | AssistantMessage | Mapping[str, Any]) -> None:
        """Append an answer, without its reasoning."""
        message = result.message if isinstance(result, ChatResult) else parse_message(result)
        if not isinstance(message, AssistantMessage):
            raise UsageError(f"add_assistant takes an assistant message, not {message.role!r}")
        if message.reasoning_content is not None:
            message = message.model_copy(update={"reasoning_content": None})
            message.model_fields_set.discard("reasoning_content")
        self.append(message)

    def add_tool_result(self, result: ToolResult | str, content: Content | None = None) -> None:
        """Append the answer to one tool call: a ``ToolResult``, or a call id and its content."""
        if isinstance(result, ToolResult):
            content, result = result.content, result.tool_call_id
        if content is None:
            raise UsageError("add_tool_result(call_id, content): the content is missing")
        self.append(ToolMessage(content=content, tool_call_id=result))

    def count(
        self, messages: Sequence[AnyMessage] | None = None, tools: Tools = None
    ) -> TokenCount:
        """``count_messages`` of ``messages`` (default: the history) with the model's tokenizer."""
        family = self.profile.tokenizer if self.profile is not None else "qwen"
        return count_messages(self._messages if messages is None else messages, family, tools)

    def budget(self, max_tokens: int | None = None, thinking: bool | None = None) -> int:
        """Prompt tokens allowed: ``budget_tokens``, else max input minus the answer's budget."""
        if self.budget_tokens is not None:
            return self.budget_tokens
        if self.profile is None:
            raise UsageError(f"model {self.model!r} is not in the catalog: pass budget_tokens")
        route = self.router.route(self.task) if self.task else None
        answer = max_tokens or (route.max_tokens if route else self.profile.default_max_tokens)
        think = route.thinking if thinking is None and route is not None else thinking
        return self.profile.max_input_for(self.profile.effective_thinking(think)) - answer

    async def afit(
        self, *, tools: Tools = None, max_tokens: int | None = None, thinking: bool | None = None
    ) -> list[AnyMessage]:
        """The messages to send next, summarising the middle when needed (see the module doc)."""
        step = self._prepare(tools, max_tokens, thinking)
        text = step.text
        if step.request is not None:
            text = (await self._achat(step.request, self._summary_params())).content
        return self._finish(step, text, tools)

    def fit(
        self, *, tools: Tools = None, max_tokens: int | None = None, thinking: bool | None = None
    ) -> list[AnyMessage]:
        """``afit`` for a ``Qwen`` client (or for no client, while nothing needs a summary)."""
        step = self._prepare(tools, max_tokens, thinking)
        text = step.text
        if step.request is not None:
            text = self._sync_client().chat(step.request, **self._summary_params()).content
        return self._finish(step, text, tools)

    async def asend(self, user_text: Content | None = None, **params: Any) -> ChatResult:
        """Append ``user_text`` (``None``: continue after tool results), fit, call the model and
        append its answer (without reasoning). On failure the history is left as it was."""
        size = self._begin(user_text, params)
        try:
            messages = await self.afit(**_fit_params(params))
            result = await self._achat(messages, self._call_params(params))
        except BaseException:
            del self._messages[size:]
            raise
        self.add_assistant(result)
        return result

    def send(self, user_text: Content | None = None, **params: Any) -> ChatResult:
        """``asend`` for a ``Qwen`` client."""
        size = self._begin(user_text, params)
        try:
            messages = self.fit(**_fit_params(params))
            result = self._sync_client().chat(messages, **self._call_params(params))
        except BaseException:
            del self._messages[size:]
            raise
        self.add_assistant(result)
        return result

    def close(self) -> None:
        """Close the client the conversation made itself (``client=None``)."""
        if self._owns_client and self.client is not None:
            close = getattr(self.client, "close", None)
            if close is not None:
                close()
            self._owns_client = False

    def _begin(self, user_text: Content | None, params: Mapping[str, Any]) -> int:
        fixed = _FIXED.intersection(params)
        if fixed:
            raise UsageError(f"{', '.join(sorted(fixed))}: set on the Conversation, not per send")
        if not self._linted:
            warn_on_dynamic_system_prompt([m for m in self._messages if m.role == "system"][:1])
            self._linted = True
        size = len(self._messages)
        if user_text is not None:
            self.add_user(user_text)
        return size

    def _call_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"model": self._model_arg, "task": self.task, **params}

    def _summary_params(self) -> dict[str, Any]:
        model, cap = self.summary_model, self.summary_max_tokens
        return {"model": model, "task": SUMMARISE, "thinking": False, "max_tokens": cap}

    async def _achat(self, messages: list[AnyMessage], params: dict[str, Any]) -> ChatResult:
        client = self.client
        if client is None:
            client = self._sync_client()
        if inspect.iscoroutinefunction(client.chat):
            return await cast(AsyncChatClient, client).chat(messages, **params)
        call = functools.partial(self._sync_client().chat, messages, **params)
        return await asyncio.to_thread(call)  # a Qwen: its runner serves any thread

    def _sync_client(self) -> SyncChatClient:
        if self.client is None:
            from qwenkit.client._sync import Qwen  # made on first need, from the environment

            self.client, self._owns_client = Qwen(), True
        if inspect.iscoroutinefunction(self.client.chat):
            raise UsageError("the client is asynchronous: use afit()/asend(), or pass a Qwen")
        return cast(SyncChatClient, self.client)

    def _prepare(
        self, tools: Tools, max_tokens: int | None, thinking: bool | None
    ) -> _window.FitStep:
        validate_history(self._messages)
        history, budget = self._messages, self.budget(max_tokens, thinking)
        count = self.count(tools=tools)
        self.last_plan = None
        if count.total <= budget:
            return _window.FitStep(budget)
        if not self.summarise:
            raise _window.overflow(count.total, budget, "the whole history; summarise=False")
        reserve = self.count([SystemMessage(content=SUMMARY_PREFIX)]).messages[0]
        plan = self.last_plan = _window.plan_window(
            history,
            count.messages,
            budget=budget,
            keep_last=self.keep_last,
            summary_tokens=reserve + self.summary_max_tokens,
            overhead=count.total - sum(count.messages),
            cached=self._summaries.cached,
        )
        if not plan.fits:
            raise _window.overflow(
                plan.tokens, budget, f"system, summary, last {len(plan.tail)} messages"
            )
        key, text = self._summaries.find(history, plan)
        if text is not None:
            return _window.FitStep(budget, plan, key, text)
        return _window.FitStep(budget, plan, key, "", self._summaries.request(history, plan))

    def _finish(self, step: _window.FitStep, text: str, tools: Tools) -> list[AnyMessage]:
        plan, history = step.plan, self._messages
        if plan is None:
            return list(history)
        head = [history[plan.head]] if plan.head is not None else []
        summary = SystemMessage(content=SUMMARY_PREFIX + text.strip())
        fitted = [*head, summary, *(history[i] for i in plan.tail)]
        count = self.count(fitted, tools)
        if count.total > step.budget:
            raise _window.overflow(count.total, step.budget, "system, summary and last messages")
        self._summaries.store(step.digest, plan, text, count.messages[len(head)])
        validate_history(fitted)
        return fitted


def _fit_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: params.get(name) for name in ("tools", "max_tokens", "thinking")}


def _default_model(sdk: object) -> str:
    """The model an ``AsyncQwen`` uses without model or task: its route policy's default."""
    for policy in getattr(getattr(sdk, "pipeline", None), "policies", ()):
        default = getattr(policy, "default_model", None)
        if isinstance(default, str):
            return default
    return "qwen-plus"
