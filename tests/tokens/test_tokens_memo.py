"""The count memo: a long text counted again is answered from memory with the same count, the
memory it holds stays within its bound (least recently used texts go first), short texts are
not kept, and threads counting the same texts all get the right answer."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from qwenkit.tokens import count_messages, get_tokenizer
from qwenkit.tokens._memo import CountMemo


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=256, max_size=2000))
def test_a_remembered_count_is_the_count(text: str) -> None:
    qwen = get_tokenizer("qwen")
    first = qwen.count(text)
    assert first == len(qwen.encode(text))
    assert qwen.count(text) == first  # from the memo now
    assert qwen.memo.get(text) == first


def test_the_memo_stays_within_its_characters_and_forgets_the_oldest() -> None:
    memo = CountMemo(min_chars=10, max_chars=100)
    for index in range(10):
        memo.put(f"{index:02d}" + "x" * 28, index)  # 30 characters each
    assert memo.chars <= 100
    assert len(memo) == 3
    assert memo.get("09" + "x" * 28) == 9
    assert memo.get("00" + "x" * 28) is None  # the oldest went first
    memo.put("short", 1)
    assert memo.get("short") is None  # under min_chars: never kept
    memo.put("y" * 101, 5)
    assert memo.get("y" * 101) is None  # larger than the whole memo


def test_a_system_prompt_repeated_on_every_call_is_tokenized_once() -> None:
    qwen = get_tokenizer("qwen")
    system = "You are the billing assistant of Example Corp. " * 40
    before = qwen.memo.misses
    counts = [
        count_messages(
            [{"role": "system", "content": system}, {"role": "user", "content": f"Question {i}"}],
            model="qwen-plus",
        ).total
        for i in range(20)
    ]
    assert len(set(counts)) <= 2  # "Question 1" and "Question 10" may differ by a token
    assert qwen.memo.misses - before <= 1  # the system turn was counted once


def test_threads_counting_the_same_texts_get_the_right_counts() -> None:
    qwen = get_tokenizer("qwen")
    texts = [f"thread text {index} " * 40 for index in range(30)]
    expected = [len(qwen.encode(text)) for text in texts]
    failures: list[str] = []

    def work() -> None:
        for _ in range(5):
            for text, count in zip(texts, expected, strict=True):
                if qwen.count(text) != count:
                    failures.append(text)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
