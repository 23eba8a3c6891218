"""Which tools the default engine calls, and with which arguments.

- ``tool_choice: "none"`` or no tools: no call.
- A named ``tool_choice`` always calls that function; ``"required"`` calls the best match (the
  first tool when none matches); ``"auto"`` (or unset) calls the best match only when the last
  message is a user message that matches some tool.
- A tool matches by the overlap between the user message and the words of its name (weight 3),
  parameter names (2) and description (1); a few concepts stand for their usual words
  ("weather" matches "umbrella", "rain", "天气"...), and CJK text matches by shared bigrams.
- ``parallel_tool_calls: true`` calls every matching tool, and a tool taking a name
  (``location``, ``city``...) once per name found: "weather in Beijing and Shanghai" gives two
  ``get_weather`` calls.
"""

from __future__ import annotations

import json
from typing import Any

from qwenkit.emulator.engine.extract import Extraction, name_words
from qwenkit.emulator.engine.schema_args import ENTITY_HINTS, Filler, hint_words
from qwenkit.emulator.engine.text import CJK_RUN, STOPWORDS, WORD
from qwenkit.types import ChatRequest, NamedToolChoice, Tool, UserMessage

__all__ = ["choose_calls", "score"]

_CONCEPT_WORDS = {
    "weather": "umbrella rain raining rainy sunny snow snowing forecast temperature hot cold wind "
    "天气 下雨 雨伞 气温 温度 预报",
    "time": "clock hour hours o'clock 时间 几点 时区",
    "search": "look lookup google web news 搜索 查找",
    "calculate": "compute sum plus minus multiply divide math 计算",
    "translate": "translation translated 翻译",
    "email": "mail e-mail inbox 邮件",
    "stock": "stocks shares share ticker 股票 股价",
}
CONCEPTS = {concept: frozenset(words.split()) for concept, words in _CONCEPT_WORDS.items()}
"""Words that stand for a concept found in a tool's name or description."""


def _content_words(text: str) -> set[str]:
    words = {w.lower() for w in WORD.findall(text) if not CJK_RUN.search(w)}
    return {w for w in words if len(w) >= 3 and w not in STOPWORDS}


def _bigrams(text: str) -> set[str]:
    return {run[i : i + 2] for run in CJK_RUN.findall(text) for i in range(len(run) - 1)}


def _said(term: str, said: set[str], text: str) -> bool:
    return term in said or (CJK_RUN.search(term) is not None and term in text)


def _overlap(words: set[str], source: Extraction, said: set[str]) -> int:
    hits = 0
    for word in words:
        forms = hint_words(word)
        synonyms = CONCEPTS.get(word, frozenset())
        if forms & said or any(_said(s, said, source.text) for s in synonyms):
            hits += 1
    return hits


def score(tool: Tool, source: Extraction) -> int:
    """How well a tool fits the message (0: not at all)."""
    said: set[str] = set()
    for word in _content_words(source.text):
        said |= hint_words(word)
    function = tool.function
    params = (function.parameters or {}).get("properties") or {}
    param_words = {w for key in params for w in name_words(str(key)) if len(w) >= 3}
    name = {w for w in name_words(function.name) if len(w) >= 3 and w not in STOPWORDS}
    description = _content_words(function.description or "")
    total = 3 * _overlap(name, source, said) + 2 * _overlap(param_words - name, source, said)
    total += _overlap(description - name - param_words, source, said)
    cjk = _bigrams(f"{function.name} {function.description or ''}")
    return total + len(cjk & _bigrams(source.text))


def _takes_name(tool: Tool) -> bool:
    props = (tool.function.parameters or {}).get("properties") or {}
    return any(
        isinstance(sub, dict)
        and sub.get("type") == "string"
        and hint_words(str(key)) & ENTITY_HINTS
        for key, sub in props.items()
    )


def _arguments(tool: Tool, source: Extraction, entity: str | None) -> str:
    schema: dict[str, Any] = tool.function.parameters or {"type": "object"}
    value = Filler(source, full=False, root=schema, entity=entity).build(schema)
    return json.dumps(value, ensure_ascii=False)


def _calls_for(tool: Tool, source: Extraction, parallel: bool) -> list[tuple[str, str]]:
    names = [name for name in source.names if name not in source.people]
    if parallel and len(names) > 1 and _takes_name(tool):
        return [(tool.name, _arguments(tool, source, name)) for name in names]
    return [(tool.name, _arguments(tool, source, None))]


def choose_calls(request: ChatRequest, source: Extraction) -> list[tuple[str, str]]:
    """The ``(name, arguments JSON)`` calls the model makes; empty for a text answer."""
    tools = request.tools or []
    choice = request.tool_choice
    if not tools or choice == "none":
        return []
    parallel = bool(request.parallel_tool_calls)
    if isinstance(choice, NamedToolChoice):
        wanted = choice.function.name
        tool = next((t for t in tools if t.name == wanted), None)
        if tool is None:
            return [(wanted, "{}")]
        return _calls_for(tool, source, parallel)
    ranked = sorted(
        ((score(tool, source), -index, tool) for index, tool in enumerate(tools)),
        key=lambda item: (item[0], item[1]),
        reverse=True,
    )
    matched = [tool for points, _, tool in ranked if points > 0]
    if choice == "required":
        matched = matched or [tools[0]]
    elif not matched or not isinstance(request.messages[-1], UserMessage):
        return []
    chosen = matched if parallel else matched[:1]
    calls: list[tuple[str, str]] = []
    for tool in chosen:
        calls.extend(_calls_for(tool, source, parallel))
    return calls
