"""Prefix-cache hygiene: dynamic content in system prompts, found and reported once."""

from __future__ import annotations

import logging

import pytest

from qwenkit.tokens.prompt_lint import (
    PromptMonitor,
    check_system_prompt,
    lint_prompt,
    warn_on_dynamic_system_prompt,
)
from qwenkit.types import SystemMessage, TextPart, UserMessage

STATIC = "You are a helpful assistant for ACME. Answer briefly and politely.\n" * 3


@pytest.mark.parametrize(
    ("text", "rule", "matched"),
    [
        ("Today is 2026-11-22.", "date", "2026-11-22"),
        ("Today is 2026/11/22.", "date", "2026/11/22"),
        ("Datum: 22.11.2026", "date", "22.11.2026"),
        ("Today is 22/11/2026.", "date", "22/11/2026"),
        ("Today is Nov 22, 2026.", "date", "Nov 22, 2026"),
        ("Today is November 22nd 2026.", "date", "November 22nd 2026"),
        ("Today is 22 November 2026.", "date", "22 November 2026"),
        ("今天是2026年11月22日。", "date", "2026年11月22日"),
        ("Now: 2026-11-22T12:34:56Z", "datetime", "2026-11-22T12:34:56Z"),
        ("Now: 2026-11-22 12:34:56.123+08:00", "datetime", "2026-11-22 12:34:56.123+08:00"),
        ("The time is 12:34.", "time", "12:34"),
        ("The time is 9:05:59 now", "time", "9:05:59"),
        ("现在时间12:34", "time", "12:34"),
        ("id 123e4567-e89b-12d3-a456-426614174000", "uuid", "123e4567-e89b-12d3-a456-426614174000"),
        ("trace 8F3A2C91DEADBEEF0042 here", "hex-id", "8F3A2C91DEADBEEF0042"),
        ("order 1234567890123456789", "hex-id", "1234567890123456789"),
        ("Request ID: ab12cd", "request-id", "Request ID: ab12cd"),
        ("session_id=s-2024", "request-id", "session_id=s-2024"),
        ("ts=1763800000 now", "timestamp", "1763800000"),
        ("ts=1763800000123 now", "timestamp", "1763800000123"),
        ("This is request #1234.", "counter", "request #1234"),
        ("We are at turn 17.", "counter", "turn 17"),
        ("Attempt no. 3", "counter", "Attempt no. 3"),
        ("这是第17轮对话", "counter", "第17轮"),
    ],
)
def test_dynamic_content_is_found(text: str, rule: str, matched: str) -> None:
    findings = lint_prompt(text)
    assert [(f.rule, f.text) for f in findings] == [(rule, matched)]
    assert "end of the messages" in findings[0].suggestion
    assert "prefix cache" in findings[0].message


@pytest.mark.parametrize(
    "text",
    [
        "Use version 2.0 of the API.",
        "On HTTP 404, apologise.",
        "Our company was founded in 2024.",
        "Knowledge cutoff: 2024.",
        "Python 3.11 and Qwen2.5-72B-Instruct are supported.",
        "Images use a 16:9 or 4:3 aspect ratio.",
        "Step 1: read the question. Step 2: answer it.",
        "Listen on port 8080 with at most 1024 tokens.",
        "Call 400-123-4567 for help.",
        "Colors: #ff0000 and #00ff00.",
        "The ratio is 1:2 and score 10/10.",
        "Keep the session id secret.",
        STATIC,
    ],
)
def test_static_content_is_not_flagged(text: str) -> None:
    assert lint_prompt(text) == []


def test_line_column_and_overlaps() -> None:
    text = "Static line.\n  Now is 2026-11-22T08:00:00Z, request #7."
    findings = lint_prompt(text)
    assert [(f.rule, f.line, f.column, f.text) for f in findings] == [
        ("datetime", 2, 10, "2026-11-22T08:00:00Z"),
        ("counter", 2, 32, "request #7"),
    ]
    assert findings[0].index is None
    assert findings[0].to_dict()["line"] == 2


def test_ignore_rules() -> None:
    text = "Opening hours 09:00-18:00. Today is 2026-11-22."
    assert [f.rule for f in lint_prompt(text)] == ["time", "time", "date"]
    assert [f.rule for f in lint_prompt(text, ignore=["time"])] == ["date"]


def test_check_system_prompt_looks_at_system_messages_only() -> None:
    messages = [
        SystemMessage(content=[TextPart(text=STATIC), TextPart(text="Date: 2026-11-22")]),
        UserMessage(content="What happened on 2026-11-21?"),
        {"role": "developer", "content": "turn 3"},
        {"role": "system", "content": None},
        {"role": "system", "content": [{"type": "text", "text": "at 10:30"}, "odd"]},
        "not a message",
    ]
    findings = check_system_prompt(messages)
    assert [(f.index, f.rule, f.text) for f in findings] == [
        (0, "date", "2026-11-22"),
        (2, "counter", "turn 3"),
        (4, "time", "10:30"),
    ]


def request(system: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": "hi"}]


def test_runtime_warning_once_per_prompt_shape(caplog: pytest.LogCaptureFixture) -> None:
    monitor = PromptMonitor()
    log = logging.getLogger("test.prompts")
    with caplog.at_level(logging.WARNING, logger="test.prompts"):
        first = warn_on_dynamic_system_prompt(
            request(STATIC + "Now: 1763800000"), log, monitor=monitor
        )
        again = warn_on_dynamic_system_prompt(
            request(STATIC + "Now: 1763800099"), log, monitor=monitor
        )
        other = warn_on_dynamic_system_prompt(
            request("Other. Now: 1763800000"), log, monitor=monitor
        )
        clean = warn_on_dynamic_system_prompt(request(STATIC), log, monitor=monitor)
    assert [f.rule for f in first] == ["timestamp"]
    assert again == []  # same prompt, new timestamp: already reported
    assert [f.text for f in other] == ["1763800000"]
    assert clean == []
    assert len(caplog.records) == 2
    message = caplog.records[0].getMessage()
    assert "timestamp '1763800000' (message 0, line 4:6)" in message
    assert "end of the messages" in message


def test_monitor_memory_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    monitor = PromptMonitor(maxsize=2)
    prompts = [f"Prompt {name}. Date: 2026-11-22" for name in ("a", "b", "c")]
    with caplog.at_level(logging.WARNING, logger="qwenkit.prompt"):
        for prompt in prompts:
            assert monitor.check(request(prompt))
        assert monitor.check(request(prompts[2])) == []
        assert monitor.check(request(prompts[0]))  # forgotten: the oldest of three shapes
    assert len(caplog.records) == 4
    assert len(monitor._seen) == 2
