"""Tools from typed Python functions, and the ``Toolbox`` that runs the model's tool calls.

``@tool`` reads a function's signature and docstring once, at decoration: the description is the
docstring's first paragraph, the parameters a JSON schema built by pydantic from the type hints
(descriptions from the docstring's Args/Parameters section or ``Annotated[..., Field(...)]``).
``FunctionTool.call`` takes the model's raw JSON arguments, validates them, runs the function (a
sync one in a worker thread, so a slow tool never blocks the event loop) under the tool's timeout,
and returns the text of the tool message. The function stays callable as before.

``Toolbox.dispatch`` never raises for what the model did wrong: an unknown tool name, invalid
arguments, a tool that raised or timed out all become an error *result* the model can read and act
on. Each failure counts against the tool's ``max_errors``; one more than that raises
``ToolErrorBudgetExceeded`` so the loop can stop instead of letting the model retry forever.

A function that cannot be a tool raises ``qwenkit.ValidationError`` at decoration; the other
exceptions are drawn in ``qwenkit.agents._errors``.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

import anyio
import anyio.to_thread
import pydantic

from qwenkit._exceptions import ValidationError
from qwenkit.agents._errors import (
    ToolArgumentsError,
    ToolErrorBudgetExceeded,
    ToolTimeoutError,
)
from qwenkit.agents._serialize import describe_errors, serialize_result, short
from qwenkit.agents._signature import build_arguments, parse_docstring, strip_titles
from qwenkit.agents.result import ToolResult
from qwenkit.agents.schema_lint import Finding, SchemaLintError, lint_schema
from qwenkit.types import FunctionDefinition, Tool, ToolCall, ToolMessage

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger("qwenkit.agents")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class FunctionTool(Generic[P, R]):
    """A function offered to the model as a tool. Call it like the function; ``await
    tool.call(arguments)`` runs it from the model's JSON arguments and returns the message text."""

    __name__: str  # copied from the function, as functools.wraps does
    __wrapped__: Callable[P, R]

    def __init__(
        self,
        function: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        max_errors: int = 3,
    ) -> None:
        self.function = function
        self.name = name or getattr(function, "__name__", None) or type(function).__name__
        if not _NAME.match(self.name):
            raise ValidationError(
                f"tool name {self.name!r} must be 1-64 letters, digits, '_' or '-'", param="name"
            )
        if max_errors < 0 or (timeout is not None and timeout <= 0):
            raise ValidationError(f"tool {self.name!r}: timeout > 0 and max_errors >= 0, please")
        doc = parse_docstring(inspect.getdoc(function))
        self.description = description or doc.summary
        self.timeout = timeout
        self.max_errors = max_errors
        self._arguments = build_arguments(function, self.name, doc)
        self.parameters: dict[str, Any] = strip_titles(self._arguments.model.model_json_schema())
        self._is_async = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
            getattr(function, "__call__", None)  # noqa: B004 - the method itself
        )
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"FunctionTool(name={self.name!r})"

    @property
    def definition(self) -> Tool:
        """The tool as the model sees it (``{"type": "function", "function": {...}}``)."""
        extra = {"description": self.description} if self.description else {}
        parameters = json.loads(json.dumps(self.parameters))  # a copy the caller may change
        return Tool(function=FunctionDefinition(name=self.name, parameters=parameters, **extra))

    def validate(self, arguments: str | Mapping[str, Any]) -> pydantic.BaseModel:
        """The validated arguments; ``ToolArgumentsError`` in words the model can act on."""
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments, default=str)
        data: Any = arguments
        if isinstance(arguments, str):
            try:
                data = json.loads(arguments) if arguments.strip() else {}
            except ValueError as exc:
                message = f"arguments are not valid JSON ({exc}); send one JSON object"
                raise ToolArgumentsError(message, tool=self.name, raw=raw) from exc
        if not isinstance(data, Mapping):
            message = f"arguments must be a JSON object, got {type(data).__name__}"
            raise ToolArgumentsError(message, tool=self.name, raw=raw)
        try:
            return self._arguments.model.model_validate(data)
        except pydantic.ValidationError as exc:
            errors = describe_errors(exc, allowed=self._arguments.fields.values())
            raise ToolArgumentsError(
                "; ".join(errors), tool=self.name, raw=raw, errors=errors
            ) from exc

    async def call(self, arguments: str | Mapping[str, Any]) -> str:
        """Validate the model's arguments, run the function and return the tool message text."""
        args, kwargs = self._arguments.call_args(self.validate(arguments))
        try:
            with anyio.fail_after(self.timeout):
                if self._is_async:
                    result: Any = await cast(Awaitable[Any], self.function(*args, **kwargs))
                else:
                    run = functools.partial(self.function, *args, **kwargs)
                    result = await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
                if inspect.isawaitable(result):
                    result = await result
        except TimeoutError as exc:
            if isinstance(exc, ToolTimeoutError):
                raise
            message = f"no result within {self.timeout:g} s" if self.timeout else str(exc)
            raise ToolTimeoutError(message, tool=self.name) from exc
        return serialize_result(result)


@overload
def tool(function: Callable[P, R], /) -> FunctionTool[P, R]: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    max_errors: int = 3,
) -> Callable[[Callable[P, R]], FunctionTool[P, R]]: ...
def tool(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    max_errors: int = 3,
) -> FunctionTool[P, R] | Callable[[Callable[P, R]], FunctionTool[P, R]]:
    """Make a tool of a typed function (sync or async): ``@tool`` or ``@tool(timeout=10)``."""

    def wrap(func: Callable[P, R]) -> FunctionTool[P, R]:
        inner = func.function if isinstance(func, FunctionTool) else func
        return FunctionTool(
            inner, name=name, description=description, timeout=timeout, max_errors=max_errors
        )

    return wrap if function is None else wrap(function)


class Toolbox:
    """Tools by name: their definitions for the request, and ``dispatch`` for the model's calls.

    Registration lints each schema (``qwenkit.agents.schema_lint``) and logs the findings on the
    ``qwenkit.agents`` logger; with ``strict=True`` any finding raises ``SchemaLintError`` instead.
    Failures count per tool until ``reset_errors()`` (the agent loop calls it when a run starts).
    """

    def __init__(
        self,
        tools: Iterable[FunctionTool[..., Any] | Callable[..., Any]] = (),
        *,
        strict: bool = False,
        lint: bool = True,
        max_parameters: int = 8,
    ) -> None:
        self.strict = strict
        self.lint = lint
        self.max_parameters = max_parameters
        self.findings: list[Finding] = []
        self._tools: dict[str, FunctionTool[..., Any]] = {}
        self._errors: dict[str, int] = {}
        self.add(*tools)

    def add(self, *tools: FunctionTool[..., Any] | Callable[..., Any]) -> None:
        """Register tools (plain functions are wrapped with ``tool``); all or none are added."""
        new = [item if isinstance(item, FunctionTool) else tool(item) for item in tools]
        names = [item.name for item in new]
        for name in names:
            if name in self._tools or names.count(name) > 1:
                raise ValidationError(f"duplicate tool name {name!r}", param=name)
        findings: list[Finding] = []
        if self.lint:
            for item in new:
                findings += lint_schema(
                    item, max_parameters=self.max_parameters, strict=self.strict
                )
        if findings and self.strict:
            raise SchemaLintError(findings)
        for finding in findings:
            logger.warning("%s", finding)
        self.findings += findings
        self._tools.update((item.name, item) for item in new)

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[FunctionTool[..., Any]]:
        return iter(list(self._tools.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> FunctionTool[..., Any] | None:
        return self._tools.get(name)

    def definitions(self) -> list[Tool]:
        return [item.definition for item in self._tools.values()]

    @property
    def errors(self) -> dict[str, int]:
        """Failures per tool name since creation or the last ``reset_errors()``."""
        return dict(self._errors)

    def reset_errors(self) -> None:
        self._errors.clear()

    async def dispatch(self, call: ToolCall) -> ToolResult:
        """Run one tool call. Never raises for the model's mistakes or a failing tool, except
        ``ToolErrorBudgetExceeded`` when the tool has failed more than ``max_errors`` times."""
        started = time.perf_counter()
        item = self._tools.get(call.name)
        if item is None:
            available = ", ".join(sorted(self._tools)) or "none"
            content = f"Unknown tool {call.name!r}. Available tools: {available}."
            return ToolResult(call.id, call.name, content, False, "unknown tool", _since(started))
        try:
            content = await item.call(call.arguments)
        except ToolArgumentsError as exc:
            error: Exception = exc
            content = f"Invalid arguments for tool {item.name!r}: {exc}. Call it again with fixed arguments."
        except ToolTimeoutError as exc:
            error = exc
            content = f"Tool {item.name!r} timed out ({exc})."
        except Exception as exc:  # a failing tool is news for the model, not a crash of the loop
            error = exc
            content = f"Tool {item.name!r} failed: {type(exc).__name__}: {short(str(exc))}"
        else:
            return ToolResult(call.id, call.name, content, True, None, _since(started))
        text = f"{type(error).__name__}: {error}"
        result = ToolResult(call.id, call.name, content, False, text, _since(started), error)
        count = self._errors[item.name] = self._errors.get(item.name, 0) + 1
        if count > item.max_errors:
            message = f"tool {item.name!r} failed {count} times (max_errors={item.max_errors}); last: {text}"
            raise ToolErrorBudgetExceeded(
                message, tool=item.name, errors=count, result=result
            ) from error
        return result

    @staticmethod
    def to_message(result: ToolResult) -> ToolMessage:
        """The tool message that answers the call, to append to the history."""
        return ToolMessage(content=result.content, tool_call_id=result.tool_call_id)


def _since(started: float) -> float:
    return time.perf_counter() - started
