"""``qwenkit chat``: one-shot runs as a user runs them (a subprocess talking to the built-in
emulator), the conversation kept across turns, the input reader, the footer, and the interactive
loop driven through a real terminal (tmux)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from qwenkit import Qwen
from qwenkit.cli._chat import ChatOptions, Session, read_message
from qwenkit.cli._chat_view import footer, format_cost
from qwenkit.emulator import create_app

# Run the real entry point (one-line errors); register the command there if it is not yet.
LAUNCH = (
    "import sys\n"
    "from qwenkit.cli import _chat, app, main\n"
    "if not any(c.name == 'chat' for c in app.registered_commands):\n"
    "    app.command('chat')(_chat.chat)\n"
    "main(sys.argv[1:])\n"
)
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
FOOTER = re.compile(
    r"tokens: prompt \d[\d,]* \(cached \d[\d,]*\) · completion \d[\d,]* \(reasoning (\d[\d,]*)\)"
    r" · cost \d[\d.]* USD · first token \d+\.\d\ds · \d+\.\d\ds"
)
REASONING_TEXT = "The user is asking about"  # how the emulator's reasoning begins
ANSWER_TEXT = "You asked about"  # how its answers begin
QUESTION = "Why is the sky blue?"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LAUNCH, "chat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=ENV,  # no DASHSCOPE_API_KEY: the built-in emulator
    )


# -- one question, as a script runs it ------------------------------------------------------------


def test_once_streams_the_answer_and_prints_the_footer() -> None:
    out = run("--once", QUESTION)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(ANSWER_TEXT)
    assert "sky" in out.stdout
    lines = out.stderr.splitlines()
    assert lines[0] == "No DASHSCOPE_API_KEY: talking to the built-in emulator (answers are canned)"
    match = FOOTER.search(out.stderr)
    assert match, out.stderr
    assert match.group(1) == "0"
    assert "tokens:" not in out.stdout  # stdout is the answer alone


def test_reasoning_is_hidden_by_default() -> None:
    out = run("--once", QUESTION, "--thinking")
    assert out.returncode == 0, out.stderr
    match = FOOTER.search(out.stderr)
    assert match, out.stderr
    assert int(match.group(1)) > 0  # the model did think...
    assert REASONING_TEXT not in out.stdout + out.stderr  # ...and none of it was shown
    assert "reasoning ─" not in out.stderr


def test_show_reasoning_renders_it_in_its_own_panel() -> None:
    out = run("--once", QUESTION, "--thinking", "--show-reasoning")
    assert out.returncode == 0, out.stderr
    assert "╭─ reasoning ─" in out.stderr
    assert REASONING_TEXT in out.stderr
    assert REASONING_TEXT not in out.stdout
    assert out.stdout.startswith(ANSWER_TEXT)


def test_json_mode_prints_parseable_json() -> None:
    out = run("--json", "--once", "List three colours")
    assert out.returncode == 0, out.stderr
    value = json.loads(out.stdout)
    assert isinstance(value, dict)
    assert value
    assert out.stdout.startswith("{\n  ")  # pretty-printed
    assert FOOTER.search(out.stderr)


def test_question_from_stdin() -> None:
    out = run("--model", "qwen-flash", stdin="What is a rainbow?\n")
    assert out.returncode == 0, out.stderr
    assert "rainbow" in out.stdout
    assert FOOTER.search(out.stderr)


def test_a_failed_call_is_one_red_line_and_status_1() -> None:
    out = run("--once", "hi", "--model", "no-such-model")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "ModelNotFound" in errors[0]
    assert "Traceback" not in out.stderr


def test_unknown_task_fails_before_any_question() -> None:
    out = run("--once", "hi", "--task", "juggling")
    assert out.returncode == 1
    assert "unknown task kind 'juggling'" in out.stderr
    assert out.stdout == ""


# -- the conversation ----------------------------------------------------------------------------


class Recording(httpx.ASGITransport):
    """The in-process emulator, keeping the body of every request sent to it."""

    def __init__(self) -> None:
        super().__init__(create_app())
        self.bodies: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(await request.aread()))
        return await super().handle_async_request(request)


@pytest.fixture
def emulated() -> Iterator[tuple[Qwen, Recording]]:
    transport = Recording()
    http = httpx.AsyncClient(transport=transport)
    with Qwen(api_key="sk-test-chat", base_url="http://emulator", http_client=http) as client:
        yield client, transport
    asyncio.run(http.aclose())


def session_on(client: Qwen, **options: Any) -> tuple[Session, io.StringIO, io.StringIO]:
    out, info = io.StringIO(), io.StringIO()
    call = {"model": None, "task": None, "thinking": None, "max_tokens": None}
    call |= options.pop("call", {})
    session = Session(
        client,
        Console(file=out, width=200),
        Console(file=info, width=200),
        ChatOptions(call, **options),
    )
    return session, out, info


def test_history_is_sent_with_each_question_without_reasoning(
    emulated: tuple[Qwen, Recording],
) -> None:
    client, emulator = emulated
    session, out, info = session_on(client, system="Be brief.", call={"thinking": True})
    assert session.ask("What is rain?")
    assert session.ask("And snow?")
    messages = emulator.bodies[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "Be brief."
    assert messages[1]["content"] == "What is rain?"
    assert "reasoning_content" not in messages[2]
    assert messages[2]["content"] in out.getvalue()
    assert session.answers == 2
    assert session.summary().startswith("2 answers · cost 0.")
    assert len(FOOTER.findall(info.getvalue())) == 2
    assert [m.role for m in session.conversation.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    session.restart()
    assert [m.role for m in session.conversation.messages] == ["system"]


def test_a_failed_call_keeps_the_conversation_as_it_was(
    emulated: tuple[Qwen, Recording],
) -> None:
    client, _ = emulated
    session, _, info = session_on(client)
    assert session.ask("hello")
    before = session.conversation.messages
    session.options.call["temperature"] = 5  # out of range: ValidationError, nothing sent
    assert not session.ask("and again")
    assert session.conversation.messages == before
    assert info.getvalue().count("error:") == 1
    assert "temperature" in info.getvalue()
    del session.options.call["temperature"]
    assert session.ask("and again")
    assert len(session.conversation.messages) == len(before) + 2


def test_json_mode_prints_the_parsed_value_and_keeps_the_history_clean(
    emulated: tuple[Qwen, Recording],
) -> None:
    client, emulator = emulated
    session, out, info = session_on(client, json_mode=True, system="Be brief.")
    assert session.ask("three colours")
    assert isinstance(json.loads(out.getvalue()), dict)
    sent = emulator.bodies[-1]
    assert sent["response_format"] == {"type": "json_object"}
    assert "json" in sent["messages"][0]["content"].lower()  # the word JSON mode needs
    assert session.conversation.messages[0].content == "Be brief."  # added to the call only
    assert FOOTER.search(info.getvalue())


# -- input and footer ----------------------------------------------------------------------------


def reader(*lines: str) -> Callable[[str], str]:
    pending = list(lines)

    def ask(prompt: str) -> str:
        if not pending:
            raise EOFError
        return pending.pop(0)

    return ask


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["hello"], "hello"),
        (["first \\", "second\\", "third"], "first \nsecond\nthird"),
        (['"""', "a", "", "b", '"""'], "a\n\nb"),
        (['"""a', 'b"""'], "a\nb"),
        (['"""one line"""'], "one line"),
        ([], None),
        (['"""', "never closed"], None),
    ],
)
def test_read_message(lines: list[str], expected: str | None) -> None:
    assert read_message(reader(*lines)) == expected


@pytest.mark.parametrize(
    ("amount", "text"),
    [("0", "0"), ("0.0001076", "0.000108"), ("1.25", "1.25"), ("12.3456", "12.3"), ("2", "2")],
)
def test_format_cost(amount: str, text: str) -> None:
    assert format_cost(Decimal(amount)) == text


def test_footer_format(emulated: tuple[Qwen, Recording]) -> None:
    client, _ = emulated
    result = client.chat(QUESTION, thinking=True)
    line = footer(result).plain
    assert FOOTER.fullmatch(line), line
    assert f"completion {result.usage.completion_tokens:,}" in line  # type: ignore[union-attr]


# -- the interactive loop in a real terminal -----------------------------------------------------


class Terminal:
    """A tmux session on its own server socket (never the user's), 120x40."""

    def __init__(self, command: list[str], socket: str) -> None:
        self.socket = socket
        self.tmux(["new-session", "-d", "-s", "chat", "-x", "120", "-y", "40", *command])

    def tmux(self, args: list[str]) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    def screen(self) -> str:
        return self.tmux(["capture-pane", "-p", "-t", "chat", "-S", "-200"])

    def keys(self, *keys: str) -> None:
        self.tmux(["send-keys", "-t", "chat", *keys])

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"timed out; the screen was:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


@pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"
)
def test_interactive_chat_in_a_terminal(tmp_path: Path) -> None:
    script = tmp_path / "launch.py"
    script.write_text(LAUNCH, encoding="utf-8")
    command = ["env", "-i", *(f"{k}={v}" for k, v in ENV.items() if k != "COLUMNS")]
    command += ["TERM=xterm-256color", sys.executable, str(script), "chat", "--thinking"]
    term = Terminal(command, socket=f"qwenkit-test-{os.getpid()}")
    try:
        banner = term.wait_for(lambda s: "you>" in s)
        assert "talking to the built-in emulator" in banner
        assert "qwenkit chat · qwen-plus · thinking on" in banner
        term.keys("Why is the sky \\", "Enter", "blue?", "Enter")
        screen = term.wait_for(lambda s: len(FOOTER.findall(s.replace("\n", ""))) == 1)
        assert "... blue?" in screen
        assert ANSWER_TEXT in screen
        assert REASONING_TEXT not in screen  # thinking on, reasoning hidden
        assert "thinking…" not in screen  # the spinner is gone once the answer is shown
        term.keys("/help", "Enter")
        term.wait_for(lambda s: s.count("/reset clears the conversation") == 2)
        term.keys('"""', "Enter", "one", "Enter", "two", "Enter", '"""', "Enter")
        term.wait_for(lambda s: len(FOOTER.findall(s.replace("\n", ""))) == 2)
        term.keys("/reset", "Enter")
        term.wait_for(lambda s: "conversation cleared" in s)
        term.keys("C-d")
        final = term.wait_for(lambda s: "2 answers · cost" in s)
        assert "Traceback" not in final
    finally:
        term.close()


def test_errors_with_brackets_print_as_written(emulated: tuple[Qwen, Recording]) -> None:
    client, _ = emulated
    session, _, info = session_on(client)
    session.error(ValueError("Range of input length should be [1, 30720] [bold]x[/]"))
    assert "Range of input length should be [1, 30720] [bold]x[/]" in info.getvalue()
