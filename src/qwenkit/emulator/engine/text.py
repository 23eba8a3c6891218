"""Deterministic prose: answers and reasoning derived from the prompt, and token-exact cutting.

Answers open with an acknowledgement that names the key words of the user's message, then add
filler sentences assembled from fixed word lists, chosen by an ``Rng`` (seed + prompt), until a
target length (40 to 120 tokens for answers, 30 to 80 for reasoning) is reached. A prompt with CJK
characters gets a Chinese answer, so multilingual tokenization is exercised end to end.
``cut_to_tokens`` trims a text to a token budget the way a model stops: after exactly that many
tokens of the tokenizer the usage is counted with.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Sequence

from qwenkit.tokens import QwenTokenizer

__all__ = [
    "STOPWORDS",
    "answer_text",
    "cjk_segments",
    "cut_to_tokens",
    "grow",
    "is_cjk",
    "keywords",
    "reasoning_text",
    "word_set",
]

CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+")
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_CJK_FILLER = re.compile(
    "天气预报|天气|气温|温度|怎么样|如何|今天|明天|后天|现在|请问|请|帮我|帮忙|查询|查一下|一下|"
    "什么|多少|几点|时间|需要|应该|可以|知道|雨伞|带伞|下雨|我想|你好"
)
_CJK_SPLIT = re.compile(r"[和与及跟、的在是吗呢吧了去到从把给对为，。？！；：\s]+")


def cjk_segments(text: str) -> list[str]:
    """The content segments of CJK text: filler words removed, split at particles (2-8 chars)."""
    segments: list[str] = []
    for run in CJK_RUN.findall(text):
        for piece in _CJK_SPLIT.split(_CJK_FILLER.sub(" ", run)):
            if 2 <= len(piece) <= 8:
                segments.append(piece)
    return segments


def word_set(words: str) -> frozenset[str]:
    """The whitespace-separated words of a literal, as a set."""
    return frozenset(words.split())


STOPWORDS = word_set(
    """a an the and or but if then so to of in on at by for with from into about as is are was
    were be been being am do does did have has had i me my you your we our they them their he
    she it its this that these those what which who whom whose when where why how can could
    should would will shall may might must please tell give show let get find any some there
    here not no yes also just very much many more most than too up down out over under again
    now today tomorrow need want like know think make use"""
)

_EN_OPENERS = ("In short,", "Put simply,", "As a rule,", "In practice,", "On balance,", "Overall,")
_EN_SUBJECTS = (
    "the main point",
    "a careful approach",
    "the simplest option",
    "a clear plan",
    "the usual answer",
    "a good first step",
    "the key detail",
    "the safest choice",
)
_EN_VERBS = ("depends on", "starts with", "comes down to", "benefits from", "relies on")
_EN_OBJECTS = (
    "the context you gave",
    "a few practical checks",
    "the details that matter most",
    "what you want to achieve",
    "reliable information",
    "a quick comparison of options",
    "the constraints at hand",
    "a second look at the facts",
)
_EN_THOUGHTS = (
    "Let me check what the question really needs.",
    "I should keep the answer short and concrete.",
    "There may be more than one reasonable reading here.",
    "The most useful reply names the key facts first.",
    "I will avoid guessing details that were not given.",
    "A brief structure should make this easy to follow.",
)
_ZH_OPENERS = ("总的来说，", "简单来说，", "一般而言，", "从实际情况看，", "综合考虑，")
_ZH_SUBJECTS = ("关键在于", "首先需要", "比较稳妥的做法是", "值得注意的是", "建议")
_ZH_OBJECTS = (
    "结合具体情况做出判断",
    "先确认几个重要细节",
    "参考可靠的信息来源",
    "比较不同方案的利弊",
    "明确想要达到的目标",
    "留意相关的限制条件",
)
_ZH_THOUGHTS = (
    "我先想一想这个问题真正需要什么。",
    "回答应该简洁而具体。",
    "这里可能有不止一种合理的理解。",
    "最有用的回答是先给出关键事实。",
    "没有提供的细节我不应该随意猜测。",
)


def is_cjk(text: str) -> bool:
    """Whether the text holds CJK (Chinese, Japanese kana, Korean) characters."""
    return CJK_RUN.search(text) is not None


def keywords(text: str, limit: int = 3) -> list[str]:
    """Key words of a message, in order: CJK runs, or non-stopwords of three letters or more."""
    if is_cjk(text):
        return list(dict.fromkeys(cjk_segments(text)))[:limit]
    seen: dict[str, str] = {}
    for word in WORD.findall(text):
        key = word.lower()
        if len(word) >= 3 and key not in STOPWORDS and key not in seen:
            seen[key] = word
    return list(seen.values())[:limit]


def _join_en(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _en_sentence(rng: random.Random) -> str:
    return (
        f"{rng.choice(_EN_OPENERS)} {rng.choice(_EN_SUBJECTS)} "
        f"{rng.choice(_EN_VERBS)} {rng.choice(_EN_OBJECTS)}."
    )


def _zh_sentence(rng: random.Random) -> str:
    return f"{rng.choice(_ZH_OPENERS)}{rng.choice(_ZH_SUBJECTS)}{rng.choice(_ZH_OBJECTS)}。"


def grow(start: str, rng: random.Random, tokenizer: QwenTokenizer, target: int, zh: bool) -> str:
    """``start`` followed by filler sentences until it holds at least ``target`` tokens.

    Tokens are counted a sentence at a time and summed (a sentence starts a new pre-token, so the
    sum is the count of the whole, give or take a merge at a join): counting the whole text again
    after every sentence cost most of a small answer's time."""
    text = start
    sep = "" if zh else " "
    total = tokenizer.count_ordinary(text)
    while total < target:
        sentence = _zh_sentence(rng) if zh else _en_sentence(rng)
        piece = f"{sep}{sentence}" if text else sentence
        text += piece
        total += tokenizer.count_ordinary(piece)
    return text


def answer_text(prompt: str, rng: random.Random, tokenizer: QwenTokenizer) -> str:
    """A stable answer of 40 to 120 tokens that acknowledges the prompt's key words."""
    words = keywords(prompt)
    zh = is_cjk(prompt)
    if zh:
        start = f"关于“{'、'.join(words)}”，以下是简要回答。" if words else "以下是简要回答。"
    elif words:
        start = f"You asked about {_join_en(words)}. Here is a short answer."
    else:
        start = "Here is a short answer."
    return grow(start, rng, tokenizer, 40 + rng.randrange(81), zh)


def reasoning_text(
    prompt: str,
    tools: Sequence[str],
    chosen: Sequence[str],
    rng: random.Random,
    tokenizer: QwenTokenizer,
    *,
    results: bool = False,
) -> str:
    """Stable reasoning of 30 to 80 tokens; names the tools offered and the ones it will call.

    ``results``: tool results are in the history (the reasoning says it can answer from them).
    """
    words = keywords(prompt)
    zh = is_cjk(prompt)
    parts: list[str] = []
    if zh:
        parts.append(f"用户在问“{'、'.join(words)}”。" if words else "用户提出了一个问题。")
        if tools:
            parts.append(f"可用的工具有：{'、'.join(tools)}。")
            if chosen:
                parts.append(f"我应该调用 {'、'.join(chosen)}。")
            else:
                parts.append(
                    "工具已经返回了结果，可以回答了。" if results else "不需要工具，直接回答。"
                )
    else:
        parts.append(
            f"The user is asking about {_join_en(words)}." if words else "The user asks a question."
        )
        if tools:
            parts.append(f"Tools available: {', '.join(tools)}.")
            if chosen:
                parts.append(f"I should call {_join_en(list(chosen))}.")
            elif results:
                parts.append("The tool results are in, so I can answer now.")
            else:
                parts.append("None of them is needed, so I will answer directly.")
    start = ("" if zh else " ").join(parts)
    thoughts = _ZH_THOUGHTS if zh else _EN_THOUGHTS
    target = 30 + rng.randrange(51)
    text = start
    for thought in rng.sample(thoughts, len(thoughts)):
        if tokenizer.count_ordinary(text) >= target:
            break
        text = f"{text}{'' if zh else ' '}{thought}"
    return grow(text, rng, tokenizer, target, zh)


def cut_to_tokens(text: str, limit: int, tokenizer: QwenTokenizer) -> tuple[str, bool]:
    """``text`` cut to its first ``limit`` tokens; the flag says whether anything was cut.

    The cut text is the decoding of the first ``limit`` ids; when that would end inside a
    multi-byte character (a byte-level token), the cut moves back to the last whole character.
    """
    ids = tokenizer.encode_ordinary(text)
    if len(ids) <= limit:
        return text, False
    normal = unicodedata.normalize("NFC", text)
    for size in range(max(limit, 0), 0, -1):
        piece = tokenizer.decode(ids[:size])
        if normal.startswith(piece) and tokenizer.count_ordinary(piece) <= limit:
            return piece, True
    return "", True
