"""``qwenkit chat``: an interactive terminal chat on the qwenkit client, streamed and priced.

Each answer streams (see ``_chat_view`` for what the screen shows) and ends with a footer of
tokens, cost and time to first token. The history is a ``qwenkit.agents.Conversation``: each
question is appended, the history fitted to the model's window (older turns summarised when it
grows too long) and sent; the answer is appended without its reasoning. A failed or stopped call
leaves the history as it was; ``/reset`` starts again from the system prompt. ``--json`` asks
through ``Qwen.json_result`` (JSON mode, thinking off, the "JSON" word added when missing) and
prints the parsed value.

With no API key (``Settings.load().resolved_api_key()`` is ``None``) or with ``--emulator``, the
command starts the built-in emulator inside this process and says so. It listens on 127.0.0.1 on
a free port (uvicorn in a daemon thread), not through ``httpx.ASGITransport``: that transport
reads the whole response before returning it, so nothing would stream. Its pacing (250 ms to the
first token, 150 tokens/s) makes the spinner and the streaming visible.

Input: Enter sends; a line ending with ``\\`` continues on the next line; a block between two
lines of ``\"\"\"`` is sent as one message. ``/help``, ``/reset``, ``/exit`` (or ``/quit``, or
Ctrl-D) are commands; Ctrl-C stops an answer (it is not kept), or clears the line at the prompt.

``--once TEXT`` asks one question, prints the answer and exits (status 1 if the call failed); so
does piping the question into stdin. A failed call (``APIError``, ``ValidationError``...) is one
red line, and the chat goes on.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from qwenkit.agents.conversation import Conversation
    from qwenkit.cli._chat_view import Turn
    from qwenkit.client._result import ChatResult
    from qwenkit.client._sync import Qwen
    from qwenkit.types import AnyMessage

__all__ = ["HELP", "ChatOptions", "Session", "chat", "emulator_server", "read_message"]

NO_KEY = "No DASHSCOPE_API_KEY"
EMULATOR_NOTE = f"{NO_KEY}: talking to the built-in emulator (answers are canned)"
EMULATOR_PACING = {"ttft_ms": 250, "tokens_per_second": 150, "chunk_tokens": 2}
UNKNOWN_MODEL_BUDGET = 10**9
"""Prompt budget of a model the catalog does not know: no fitting here, the service decides."""
HELP = (
    'Enter sends. End a line with \\ to continue it, or put a block between two """ lines.\n'
    "/reset clears the conversation, /help shows this, /exit or Ctrl-D quits; "
    "Ctrl-C stops an answer."
)
FENCE = '"""'


def read_message(ask: Callable[[str], str]) -> str | None:
    """One message from ``ask(prompt)`` (``input``): continued lines and blocks joined.
    ``None`` at the end of input (``EOFError``)."""
    try:
        line = ask("you> ")
        if line.strip().startswith(FENCE):
            first = line.strip()[len(FENCE) :]
            if first.endswith(FENCE):
                return first[: -len(FENCE)]
            lines = [first] if first else []
            while not (line := ask("... ")).rstrip().endswith(FENCE):
                lines.append(line)
            lines.append(line.rstrip()[: -len(FENCE)])
            return "\n".join(lines).strip("\n")
        parts = []
        while line.endswith("\\"):
            parts.append(line[:-1])
            line = ask("... ")
        return "\n".join([*parts, line])
    except EOFError:
        return None


@dataclass(frozen=True)
class ChatOptions:
    """What the command line asked for, per call and for the screen."""

    call: dict[str, Any]
    system: str | None = None
    show_reasoning: bool = False
    json_mode: bool = False


class Session:
    """One chat: the client, the conversation, the running cost, and how to show an answer."""

    def __init__(self, client: Qwen, out: Console, info: Console, options: ChatOptions) -> None:
        self.client, self.out, self.info, self.options = client, out, info, options
        self.answers = 0
        self.spent: dict[str, Decimal] = {}
        self.conversation = self.restart()

    def restart(self, messages: Sequence[AnyMessage] | None = None) -> Conversation:
        """A new conversation: ``messages``, or only the system prompt (``/reset``)."""
        from qwenkit.agents.conversation import Conversation
        from qwenkit.types import SystemMessage

        call = self.options.call
        conversation = Conversation(model=call["model"], task=call["task"], client=self.client)
        if conversation.profile is None:  # a model the catalog does not know: the service decides
            conversation.budget_tokens = UNKNOWN_MODEL_BUDGET
        system = self.options.system
        conversation.extend([SystemMessage(content=system)] if messages is None and system else [])
        conversation.extend(messages or [])
        self.conversation = conversation
        return conversation

    def _renderer(self) -> Turn:
        from qwenkit.cli._chat_view import LiveTurn, PlainTurn

        shown, json_mode = self.options.show_reasoning, self.options.json_mode
        if self.out.is_terminal:
            return LiveTurn(self.out, show_reasoning=shown, json_mode=json_mode)
        return PlainTurn(self.out, self.info, show_reasoning=shown, json_mode=json_mode)

    def ask(self, text: str) -> bool:
        """Send ``text`` after the conversation and show the answer; False if the call failed
        (the conversation is then left as it was)."""
        from qwenkit._exceptions import QwenError

        before, view, call = self.conversation.messages, self._renderer(), self.options.call
        view.start()  # the spinner also covers a summary of older turns, when one is needed
        try:
            self.conversation.add_user(text)
            fit = {"max_tokens": call["max_tokens"], "thinking": call["thinking"]}
            messages = self.conversation.fit(**fit)
            if self.options.json_mode:
                answer = self.client.json_result(messages, **call)
                result, value = answer.result, answer.value
            else:
                result, value = self._stream(messages, view), None
        except (KeyboardInterrupt, QwenError) as exc:
            view.abort()
            self.restart(before)
            if isinstance(exc, KeyboardInterrupt):
                self.info.print("[dim](stopped; this answer is not kept in the conversation)[/]")
            else:
                self.error(exc)
            return False
        view.finish(result, value)
        self.conversation.add_assistant(result)
        self.answers += 1
        if result.cost is not None:
            spent = self.spent.get(result.cost.currency, Decimal(0))
            self.spent[result.cost.currency] = spent + result.cost.total
        return True

    def _stream(self, messages: list[AnyMessage], view: Turn) -> ChatResult:
        from qwenkit.types import ContentDelta, ReasoningDelta

        with self.client.stream(messages, **self.options.call) as stream:
            for event in stream:
                if isinstance(event, ReasoningDelta):
                    view.reasoning(event.text)
                elif isinstance(event, ContentDelta) and event.choice == 0:
                    view.answer(event.text)
            return stream.result()

    def error(self, exc: BaseException) -> None:
        lines = str(exc).strip().splitlines()
        message = lines[0] if lines else type(exc).__name__
        self.info.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)

    def summary(self) -> str:
        from qwenkit.cli._chat_view import format_cost

        spent = ", ".join(f"{format_cost(v)} {c}" for c, v in self.spent.items()) or "n/a"
        return f"{self.answers} answer{'s' * (self.answers != 1)} · cost {spent}"


def repl(session: Session, described: str) -> None:
    """Read messages until ``/exit`` or the end of input; commands are handled here."""
    with suppress(ImportError):  # line editing and history for input(), where there is readline
        import readline  # noqa: F401 - importing it is what enables line editing
    session.info.print(f"[bold]qwenkit chat[/] · {described}\n[dim]{HELP}[/]")
    while True:
        try:
            text = read_message(input)
        except KeyboardInterrupt:
            session.out.print()
            continue
        command = "/exit" if text is None else text.strip()
        if command in ("/exit", "/quit"):
            break
        if command == "/reset":
            session.restart()
            session.info.print("[dim]conversation cleared[/]")
        elif command == "/help":
            session.info.print(HELP, markup=False)
        elif command.startswith("/") and " " not in command:
            session.error(ValueError(f"unknown command {command} (/help lists them)"))
        elif text and command:
            session.ask(text)
    session.info.print(f"\n[dim]{session.summary()}[/]")


def describe(conversation: Conversation, thinking: bool | None) -> str:
    """``qwen-plus · thinking off`` for the banner: the model and thinking the calls will use."""
    task, profile = conversation.task, conversation.profile
    if thinking is None and task:
        thinking = conversation.router.route(task).thinking
    if profile is not None:
        thinking = profile.effective_thinking(thinking)
    state = "default" if thinking is None else ("on" if thinking else "off")
    return f"{conversation.model} · thinking {state}" + (f" · task {task}" if task else "")


@contextmanager
def emulator_server() -> Iterator[str]:
    """The emulator on 127.0.0.1 (a free port, uvicorn in a daemon thread); yields its URL."""
    try:
        import uvicorn

        from qwenkit.emulator import create_app, load_config
    except ModuleNotFoundError:
        raise ValueError(
            "no DASHSCOPE_API_KEY, and the built-in emulator needs the emulator extra: "
            "set DASHSCOPE_API_KEY, or pip install 'qwenkit[emulator]'"
        ) from None
    app = create_app(load_config(pacing=EMULATOR_PACING))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="qwenkit-chat-emulator", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the built-in emulator did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def chat(
    *,
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model (default: the task's, or qwen-plus).", show_default=False
    ),
    task: str | None = typer.Option(
        None, "--task", "-t", help="Task kind to route (chat, reason, code...).", show_default=False
    ),
    thinking: bool | None = typer.Option(
        None, "--thinking/--no-thinking", help="Think first (default: the model's or task's)."
    ),
    show_reasoning: bool = typer.Option(
        False, "--show-reasoning", help="Show the model's reasoning, dimmed, in its own panel."
    ),
    as_json: bool = typer.Option(False, "--json", help="JSON mode: answers as pretty JSON."),
    system: str | None = typer.Option(None, "--system", help="System prompt.", show_default=False),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="Longest answer, in tokens.", show_default=False
    ),
    emulator: bool = typer.Option(
        False, "--emulator", help="Use the built-in emulator even with an API key."
    ),
    once: str | None = typer.Option(
        None, "--once", help="Ask one question, print the answer, exit.", show_default=False
    ),
) -> None:
    """Chat with Qwen in the terminal: streamed answers with tokens, cost and timings."""
    from qwenkit._settings import Settings
    from qwenkit.client._sync import Qwen

    out = Console(highlight=False)
    info = out if out.is_terminal else Console(stderr=True, highlight=False)
    use_emulator = emulator or Settings.load().resolved_api_key() is None
    question = once if once is not None or sys.stdin.isatty() else sys.stdin.read()
    if question is not None and not question.strip():
        raise ValueError("no question: give --once TEXT, or pipe text into stdin")
    call = {"model": model, "task": task, "thinking": thinking, "max_tokens": max_tokens}
    options = ChatOptions(call, system, show_reasoning=show_reasoning, json_mode=as_json)
    with ExitStack() as stack:
        if use_emulator:
            url = stack.enter_context(emulator_server())
            client = Qwen(api_key="sk-emulator", base_url=url, usage_sinks=[])
            note = EMULATOR_NOTE if not emulator else EMULATOR_NOTE.replace(NO_KEY, "--emulator")
            info.print(f"[dim]{note}[/]")
        else:
            client = Qwen(usage_sinks=[])
        stack.callback(client.close)
        session = Session(client, out, info, options)
        if question is None:
            repl(session, describe(session.conversation, thinking))
        elif not session.ask(question):
            raise typer.Exit(1)
