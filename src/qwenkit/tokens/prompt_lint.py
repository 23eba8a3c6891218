"""Prefix-cache hygiene: find dynamic content in system prompts.

DashScope's implicit cache reuses the longest prefix a request shares with an earlier one, from
256 identical leading tokens on, at 20% of the input price. A date, a time, a UUID, a request id,
a timestamp or a turn counter in the system prompt changes between requests, so everything after
it stops matching, every time. Keep the system prompt static and put such values at the end of the
messages (a final user message line such as ``Current date: 2026-11-22``).

Detected (``rule``): ``datetime`` (ISO 8601), ``date`` (``2026-11-22``, ``2026/11/22``,
``22/11/2026``, ``22.11.2026``, ``Nov 22, 2026``, ``22 November 2026``, ``2026年11月22日``),
``time`` (``12:34``, ``12:34:56``), ``uuid``, ``hex-id`` (16+ hex characters with a digit, or a
bare run of 16+ digits), ``request-id`` (``request id: 8f3a2c91``), ``timestamp`` (10- or 13-digit
Unix times from 2001 to 2033), ``counter`` (``request #1234``, ``turn 17``, ``第17轮``).

Not flagged, on purpose: a year alone (``in 2024``), versions (``version 2.0``, ``Python 3.11``),
status codes (``HTTP 404``), ratios (``16:9``), numbered steps (``Step 1``).

``lint_prompt`` checks one text (``qwenkit lint prompt``); ``check_system_prompt`` the system
messages of a request; ``warn_on_dynamic_system_prompt`` logs once per prompt *shape* (the text
with its dynamic parts masked), so a prompt whose timestamp changes on every request is reported
once, not on every request. The memory of shapes seen is bounded (``PromptMonitor``).
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_Y = r"(?:19|20)\d{2}"
_M = r"(?:0?[1-9]|1[0-2])"
_D = r"(?:0?[1-9]|[12]\d|3[01])"
_L = r"(?<![0-9A-Za-z])"  # ASCII boundaries: Chinese text next to a date still counts as a boundary
_R = r"(?![0-9A-Za-z])"

_DATETIME = (
    rf"{_L}{_Y}-\d{{2}}-\d{{2}}[T ]\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?"
    rf"(?:Z|[+-]\d{{2}}:?\d{{2}})?{_R}"
)
_UUID = rf"{_L}[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}{_R}"
_REQUEST_ID = (
    r"\b(?:request|req|trace|span|session|correlation|conversation)[ _-]?id"
    r"\s*[:=#]?\s*[\"']?(?=[\w.-]*\d)[\w.-]{4,}"
)
_NUMERIC_DATE = rf"{_L}{_Y}[-/.]{_M}[-/.]{_D}{_R}|{_L}\d{{1,2}}[/.-]\d{{1,2}}[/.-]{_Y}{_R}"
_WORDY_DATE = (
    rf"\b{_MONTH}\.?\s+{_D}(?:st|nd|rd|th)?,?\s+{_Y}{_R}"
    rf"|{_L}{_D}(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+{_Y}{_R}"
)
_CHINESE_DATE = rf"{_L}{_Y}\s*年\s*{_M}\s*月(?:\s*{_D}\s*[日号])?"
_TIME = rf"(?<![\d:.]){_L}(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?(?![\d:]){_R}"
_COUNTER = (
    r"\b(?:request|turn|round|attempt|iteration|session|message|conversation|ticket|query)"
    r"\s*(?:#\s*|no\.\s*|number\s+)?\d+\b|第\s*\d+\s*(?:轮|次|个请求)"
)
_RULES: list[tuple[str, str, re.Pattern[str]]] = [
    (rule, label, re.compile(pattern, re.IGNORECASE))
    for rule, label, pattern in [
        ("datetime", "a date and time", _DATETIME),
        ("uuid", "a UUID", _UUID),
        ("request-id", "a request id", _REQUEST_ID),
        ("date", "a date", _NUMERIC_DATE),
        ("date", "a date", _WORDY_DATE),
        ("date", "a date", _CHINESE_DATE),
        ("time", "a time of day", _TIME),
        ("hex-id", "an id", rf"{_L}(?=[0-9a-f]*\d)[0-9a-f]{{16,}}{_R}"),
        ("timestamp", "a Unix timestamp", rf"{_L}1\d{{9}}(?:\d{{3}})?{_R}"),
        ("counter", "a counter", _COUNTER),
    ]
]
_DIGIT = re.compile(r"[0-9]")
_EXAMPLE = {"date": "Current date: …", "datetime": "Current time: …", "time": "Current time: …",
            "timestamp": "Current time: …", "counter": "Turn: …"}  # fmt: skip


@dataclass(frozen=True)
class PromptFinding:
    """Dynamic content at ``line``:``column`` (1-based) of a prompt; ``index`` is the message's
    position in the list when the prompt came from messages."""

    rule: str
    line: int
    column: int
    text: str
    message: str
    suggestion: str
    index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spans(text: str, ignore: Iterable[str] = ()) -> list[tuple[int, int, str, str]]:
    """Non-overlapping matches ``(start, end, rule, label)``; the earlier, then longer, wins.

    Every rule needs an ASCII digit (a UUID of letters only, one in 10^19, is the exception), so
    a text without one is not scanned: ten rules over a long prompt cost milliseconds."""
    if _DIGIT.search(text) is None:
        return []
    skip = set(ignore)
    found = [
        (match.start(), match.end(), rule, label)
        for rule, label, pattern in _RULES
        if rule not in skip
        for match in pattern.finditer(text)
    ]
    found.sort(key=lambda span: (span[0], -(span[1] - span[0])))
    kept: list[tuple[int, int, str, str]] = []
    for span in found:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def lint_prompt(
    text: str, *, ignore: Iterable[str] = (), index: int | None = None
) -> list[PromptFinding]:
    """Every piece of dynamic content in ``text`` that would break the implicit prefix cache;
    ``ignore`` names rules to skip (``["time"]`` for a prompt with fixed opening hours)."""
    return _findings(text, _spans(text, ignore), index)


def _findings(
    text: str, spans: list[tuple[int, int, str, str]], index: int | None
) -> list[PromptFinding]:
    if not spans:
        return []
    starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]
    findings = []
    for start, end, rule, label in spans:
        line = bisect.bisect_right(starts, start)
        value = text[start:end]
        example = _EXAMPLE.get(rule, "Request id: …")
        findings.append(
            PromptFinding(
                rule=rule,
                line=line,
                column=start - starts[line - 1] + 1,
                text=value,
                message=f"{label} ({value!r}) in the system prompt changes between requests: the "
                "implicit prefix cache (256+ identical leading tokens) stops matching here",
                suggestion="Keep the system prompt static and move this to the end of the messages, "
                f'e.g. a final user message line "{example}", so the prefix stays cacheable.',
                index=index,
            )
        )
    return findings


def _role_and_text(message: Any) -> tuple[str | None, str]:
    if isinstance(message, Mapping):
        role, content = message.get("role"), message.get("content")
    else:
        role, content = getattr(message, "role", None), getattr(message, "content", None)
    if isinstance(content, str):
        return role, content
    parts = content if isinstance(content, list) else []
    texts = [p.get("text") if isinstance(p, Mapping) else getattr(p, "text", None) for p in parts]
    return role, "".join(t for t in texts if isinstance(t, str))


def check_system_prompt(
    messages: Iterable[Any], *, ignore: Iterable[str] = ()
) -> list[PromptFinding]:
    """Findings in the system (and developer) messages of a request; never raises on odd input."""
    skip = list(ignore)
    findings: list[PromptFinding] = []
    for index, message in enumerate(messages):
        role, text = _role_and_text(message)
        if role in ("system", "developer"):
            findings += lint_prompt(text, ignore=skip, index=index)
    return findings


def _system_texts(messages: Iterable[Any]) -> list[tuple[int, str]]:
    found = []
    for index, message in enumerate(messages):
        role, text = _role_and_text(message)
        if role in ("system", "developer"):
            found.append((index, text))
    return found


def _shape(scanned: list[tuple[str, list[tuple[int, int, str, str]]]]) -> str:
    """The prompt with its dynamic parts masked (the same for every timestamp), hashed."""
    digest = hashlib.sha256()
    for text, spans in scanned:
        cursor = 0
        for start, end, rule, _ in spans:
            digest.update(text[cursor:start].encode() + f"\0{rule}\0".encode())
            cursor = end
        digest.update(text[cursor:].encode() + b"\0\0")
    return digest.hexdigest()


class PromptMonitor:
    """Remembers the prompts already checked and the prompt shapes already reported (at most
    ``maxsize`` of them together, the least recent dropped)."""

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = None
            while len(self._seen) > self.maxsize:
                self._seen.popitem(last=False)
            return True

    def check(
        self, messages: Iterable[Any], logger: logging.Logger | None = None
    ) -> list[PromptFinding]:
        """Log the findings of a request once per prompt shape; return what was logged now.

        A system prompt seen before (the exact text) is not scanned again: a static prompt costs
        one hash per request, and the regular expressions run once."""
        texts = _system_texts(messages)
        if not texts:
            return []
        exact = hashlib.sha256("\0\0".join(text for _, text in texts).encode()).hexdigest()
        if not self.first_time("text:" + exact):
            return []
        scanned = [(text, _spans(text)) for _, text in texts]
        findings = [
            finding
            for (index, text), (_, spans) in zip(texts, scanned, strict=True)
            for finding in _findings(text, spans, index)
        ]
        if not findings or not self.first_time(_shape(scanned)):
            return []
        where = "; ".join(
            f"{f.rule} {f.text!r} (message {f.index}, line {f.line}:{f.column})" for f in findings
        )
        (logger or logging.getLogger("qwenkit.prompt")).warning(
            "dynamic content in the system prompt breaks the implicit prefix cache: %s. Keep the "
            "system prompt static and move it to the end of the messages (e.g. a final user message "
            'line "Current date: ...").',
            where,
        )
        return findings


_DEFAULT_MONITOR = PromptMonitor()


def warn_on_dynamic_system_prompt(
    messages: Iterable[Any],
    logger: logging.Logger | None = None,
    *,
    monitor: PromptMonitor | None = None,
) -> list[PromptFinding]:
    """The runtime check the SDK runs per request: log a warning once per prompt shape. Pass a
    ``monitor`` owned by the client to keep its memory apart from the process-wide default."""
    return (monitor or _DEFAULT_MONITOR).check(messages, logger)


__all__ = [
    "PromptFinding",
    "PromptMonitor",
    "check_system_prompt",
    "lint_prompt",
    "warn_on_dynamic_system_prompt",
]
