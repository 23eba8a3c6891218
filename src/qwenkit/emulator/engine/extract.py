"""What the engines pull out of a user message: quoted strings, names, numbers, dates, words.

``extract`` reads a message once; argument builders, JSON answers and tool selection then pick
from the result. Names are capitalised word runs ("Shanghai", "New York") with leading function
words dropped ("Should I" is not a name), or, in CJK text, the segments left once common filler
words are removed and the text is split at conjunctions and particles ("北京和上海的天气" → 北京,
上海). The word before a name tells a place ("in Lisbon") from a person ("for Ana Silva"). The
rules are simple on purpose: they only have to be stable and plausible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qwenkit.emulator.engine.text import CJK_RUN, STOPWORDS, WORD, cjk_segments, word_set

__all__ = ["Extraction", "extract", "name_words"]

_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|「([^」]+)」|‘([^’]+)’|(?<!\w)\'([^\']+)\'(?!\w)')
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.-])-?\d+(?:\.\d+)?(?![A-Za-z0-9_])")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL = re.compile(r"https?://[^\s\"'<>]+")
_NAME_RUN = re.compile(r"\b[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")
_NOT_NAMES = STOPWORDS | word_set(
    """hi hello hey thanks thank ok okay sure bring check look compare book send write explain
    describe summarize summarise translate list help call search weather"""
)
_PLACE_CUES = word_set("in to at from near around visit visiting towards into via")
_PERSON_CUES = word_set("for by with named called dear mr ms mrs dr meet ask")
_CONJUNCTION = re.compile(r"\s*(?:,|and|or|&)?\s*(?:and|or)?\s*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def name_words(name: str) -> list[str]:
    """The lower-case words of an identifier: ``get_currentWeather`` → get, current, weather."""
    return [w.lower() for w in re.split(r"[_\W]+", _CAMEL.sub("_", name)) if w]


@dataclass(frozen=True)
class Extraction:
    """The values found in one message (each tuple in order of appearance, without repeats)."""

    text: str
    quoted: tuple[str, ...]
    names: tuple[str, ...]
    places: frozenset[str]
    """Names that read as places: after "in", "to", "from"..., and CJK names."""
    people: frozenset[str]
    """Names that read as people: after "for", "by", "named"... (the rest: either)."""
    numbers: tuple[float, ...]
    dates: tuple[str, ...]
    emails: tuple[str, ...]
    urls: tuple[str, ...]
    words: frozenset[str]
    """Lower-case words, plus the CJK text itself for substring tests (see ``mentions``)."""

    def mentions(self, term: str) -> bool:
        """Whether ``term`` (a word, an identifier, an enum value) appears in the message."""
        term = term.strip().lower()
        if not term:
            return False
        if CJK_RUN.search(term):
            return term in self.text
        parts = name_words(term)
        if len(parts) > 1:
            pattern = r"\b" + r"[\s_-]*".join(map(re.escape, parts)) + r"\b"
            return re.search(pattern, self.lower) is not None
        return term in self.words

    @property
    def lower(self) -> str:
        return self.text.lower()


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _common(word: str) -> bool:
    return len(word) == 1 or re.split(r"['’]", word.lower())[0] in _NOT_NAMES


def _english_names(text: str, quoted: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(name, kind)`` pairs; kind ``place``, ``person`` or ``""`` (either), from the word before.

    A name joined to the previous one by a comma, "and" or "or" has the previous one's kind.
    """
    names: list[tuple[str, str]] = []
    kind, last_end = "", -1
    for match in _NAME_RUN.finditer(text):
        words = match.group(0).split()
        while words and _common(words[0]):
            words.pop(0)
        while words and _common(words[-1]):
            words.pop()
        name = " ".join(words).strip("'’-")
        if not name or name in quoted:
            continue
        start = text.index(name, match.start())
        before = WORD.findall(text[:start])
        cue = before[-1].lower() if before else ""
        if last_end < 0 or not _CONJUNCTION.fullmatch(text[last_end:start]):
            kind = "place" if cue in _PLACE_CUES else "person" if cue in _PERSON_CUES else ""
        names.append((name, kind))
        last_end = start + len(name)
    return names


def extract(text: str) -> Extraction:
    """Read the values of a message (see the module docstring)."""
    quoted = _unique([next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)])
    unquoted = _QUOTED.sub(" ", text)
    dates = _unique(_DATE.findall(text))
    emails = _unique(_EMAIL.findall(text))
    urls = _unique(_URL.findall(text))
    plain = _URL.sub(" ", _EMAIL.sub(" ", _DATE.sub(" ", unquoted)))
    numbers = tuple(float(n) for n in _NUMBER.findall(plain))
    english = _english_names(plain, quoted)
    cjk = cjk_segments(plain)
    names = _unique([name for name, _ in english] + cjk)
    places = frozenset([name for name, kind in english if kind == "place"] + cjk)
    people = frozenset(name for name, kind in english if kind == "person") - places
    words = frozenset(w.lower() for w in WORD.findall(text))
    return Extraction(text, quoted, names, places, people, numbers, dates, emails, urls, words)
