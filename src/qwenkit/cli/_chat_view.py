"""How ``qwenkit chat`` shows one answer: live while it streams, then in full, then a footer.

Two renderers with one interface (``start``, ``reasoning``, ``answer``, ``finish``, ``abort``):

- ``LiveTurn`` (stdout is a terminal): a ``rich.live.Live`` view that shows a spinner with the
  elapsed time ("thinking… 3.2s") until the first answer token, the reasoning dimmed in a panel
  titled "reasoning" when asked for (its last lines while it streams), and the answer as plain
  text while it streams (the tail that fits the screen). When the answer ends the live view is
  replaced by the final render: the whole reasoning panel, the answer as Markdown (or, in JSON
  mode, where nothing streams, the parsed value as highlighted JSON) and the footer.
- ``PlainTurn`` (stdout is a pipe or a file): the answer goes to stdout exactly as the model wrote
  it, as it arrives (in JSON mode the parsed value, indented, at the end); the reasoning
  panel and the footer go to stderr, so a script reading stdout gets only the answer.

The footer: ``tokens: prompt 1,234 (cached 1,024) · completion 256 (reasoning 120) · cost
0.00012 USD · first token 0.41s · 1.9s`` (the last figure is the whole call).
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any, Protocol

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.json import JSON
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.spinner import Spinner
from rich.text import Text

from qwenkit.client._result import ChatResult

__all__ = ["LiveTurn", "PlainTurn", "Turn", "footer", "format_cost"]

REASONING_LINES = 6
"""Lines of reasoning the live panel keeps on screen while it streams."""


class Turn(Protocol):
    """What the chat loop tells a renderer during one answer."""

    def start(self) -> None: ...
    def reasoning(self, text: str) -> None: ...
    def answer(self, text: str) -> None: ...
    def finish(self, result: ChatResult, value: Any = None) -> None: ...
    def abort(self) -> None: ...


def format_cost(amount: Decimal) -> str:
    """A cost with three significant digits in fixed notation (``0.000108``, ``1.25``)."""
    if amount == 0:
        return "0"
    exponent = amount.adjusted() - 2
    rounded = amount.quantize(Decimal(1).scaleb(min(exponent, 0)))
    text = format(rounded, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def footer(result: ChatResult) -> Text:
    """The one dim line after an answer: tokens, cost and times."""
    usage = result.usage
    if usage is None:
        tokens = "tokens: not reported"
    else:
        tokens = (
            f"tokens: prompt {usage.prompt_tokens:,} (cached {usage.cached_tokens:,}) · "
            f"completion {usage.completion_tokens:,} (reasoning {usage.reasoning_tokens:,})"
        )
    price = (
        "cost n/a"
        if result.cost is None
        else (f"cost {format_cost(result.cost.total)} {result.cost.currency}")
    )
    times = f"first token {_seconds(result.time_to_first_token)} · {_seconds(result.latency)}"
    return Text(f"{tokens} · {price} · {times}", style="dim")


def _reasoning_panel(text: str) -> Panel:
    return Panel(
        Text(text.strip(), style="dim"),
        title="reasoning",
        title_align="left",
        border_style="dim",
    )


class _View:
    """The live frame: reasoning tail, then the spinner or the answer's tail."""

    def __init__(self, *, show_reasoning: bool) -> None:
        self.show_reasoning = show_reasoning
        self.started = time.perf_counter()
        self.reasoning: list[str] = []
        self.answer: list[str] = []
        self.spinner = Spinner("dots", style="cyan")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        room = max(options.size.height - 1, 3)
        parts: list[RenderableType] = []
        if self.show_reasoning and self.reasoning:
            lines = Text("".join(self.reasoning).strip(), style="dim").wrap(console, width - 4)
            shown = Text("\n").join(lines[-REASONING_LINES:])
            parts.append(Panel(shown, title="reasoning", title_align="left", border_style="dim"))
            room -= min(len(lines), REASONING_LINES) + 2
        if not self.answer:
            elapsed = time.perf_counter() - self.started
            self.spinner.text = Text(f"thinking… {elapsed:.1f}s", style="dim")
            parts.append(self.spinner)
        else:
            lines = Text("".join(self.answer)).wrap(console, width)
            parts.append(Text("\n").join(lines[-max(room, 1) :]))
        yield Group(*parts)


class LiveTurn:
    """The terminal renderer; see the module docstring."""

    def __init__(self, console: Console, *, show_reasoning: bool, json_mode: bool) -> None:
        self.console = console
        self.json_mode = json_mode
        self.show_reasoning = show_reasoning
        self._view = _View(show_reasoning=show_reasoning)
        self._live = Live(
            self._view,
            console=console,
            transient=True,
            refresh_per_second=12,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def start(self) -> None:
        self._live.start()

    def reasoning(self, text: str) -> None:
        self._view.reasoning.append(text)

    def answer(self, text: str) -> None:
        self._view.answer.append(text)

    def finish(self, result: ChatResult, value: Any = None) -> None:
        self._live.stop()
        if self.show_reasoning and result.reasoning:
            self.console.print(_reasoning_panel(result.reasoning))
        if self.json_mode and value is not None:
            self.console.print(JSON.from_data(value, ensure_ascii=False))
        elif self.json_mode or not result.content.strip():
            self.console.print(Text(result.content))
        else:
            self.console.print(Markdown(result.content))
        self.console.print(footer(result))

    def abort(self) -> None:
        self._live.stop()
        if self._view.answer and not self.json_mode:
            self.console.print(Text("".join(self._view.answer)))


class PlainTurn:
    """The pipe renderer: answer on ``out`` as it arrives, everything else on ``info``."""

    def __init__(
        self, out: Console, info: Console, *, show_reasoning: bool, json_mode: bool
    ) -> None:
        self.out, self.info = out, info
        self.show_reasoning = show_reasoning
        self.json_mode = json_mode
        self._reasoning: list[str] = []
        self._answered = False

    def start(self) -> None:
        self._reasoning.clear()
        self._answered = False

    def _flush_reasoning(self) -> None:
        if self.show_reasoning and self._reasoning:
            self.info.print(_reasoning_panel("".join(self._reasoning)))
        self._reasoning.clear()

    def reasoning(self, text: str) -> None:
        self._reasoning.append(text)

    def answer(self, text: str) -> None:
        if not self._answered:
            self._answered = True
            self._flush_reasoning()
        if not self.json_mode:
            self.out.file.write(text)
            self.out.file.flush()

    def finish(self, result: ChatResult, value: Any = None) -> None:
        self._flush_reasoning()
        if self.json_mode:
            shown = (
                result.content if value is None else json.dumps(value, ensure_ascii=False, indent=2)
            )
            self.out.file.write(shown + "\n")
        elif self._answered:
            self.out.file.write("\n")
        self.out.file.flush()
        self.info.print(footer(result), soft_wrap=True)

    def abort(self) -> None:
        if self._answered and not self.json_mode:
            self.out.file.write("\n")
            self.out.file.flush()
