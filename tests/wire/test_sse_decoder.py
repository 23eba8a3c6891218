"""Tests of the incremental SSE decoder and the two SSE framings (``qwenkit.wire.sse``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwenkit.wire.sse import (
    COMPAT_DONE,
    SSEDecoder,
    SSEEvent,
    SSEProtocolError,
    aiter_sse,
    encode_compat_event,
    encode_native_event,
    iter_sse,
)


def decode(chunks: Sequence[bytes], *, max_line_bytes: int | None = None) -> list[SSEEvent]:
    decoder = SSEDecoder() if max_line_bytes is None else SSEDecoder(max_line_bytes=max_line_bytes)
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` cut at the given positions (any order, duplicates allowed: empty chunks too)."""
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


NATIVE = (
    b"id:1\nevent:result\n:HTTP_STATUS/200\n"
    b'data:{"output":{"choices":[{"message":{"content":"\xe4\xbd\xa0\xe5\xa5\xbd"}}]}}\n\n'
)
NATIVE_EVENT = SSEEvent(
    data='{"output":{"choices":[{"message":{"content":"你好"}}]}}',
    event="result",
    id="1",
    status=200,
)


# -- line endings and framing ---------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings(eol: bytes) -> None:
    stream = NATIVE.replace(b"\n", eol) + b"data: second" + eol + eol
    assert decode([stream]) == [NATIVE_EVENT, SSEEvent(data="second")]


def test_mixed_line_endings_in_one_stream() -> None:
    stream = b"data:a\r\n\r\ndata:b\n\ndata:c\r\rdata:d\r\n\n"
    assert [e.data for e in decode([stream])] == ["a", "b", "c", "d"]


def test_cr_at_end_of_chunk_and_lf_at_start_of_next() -> None:
    # If the CR were taken as a line end on its own, the LF would be a blank line and dispatch
    # the event early, splitting "a" and "b" into two events.
    chunks = [b"data:a\r", b"\ndata:b\r", b"\n\r", b"\n"]
    assert decode(chunks) == [SSEEvent(data="a\nb")]


def test_lone_cr_at_end_of_chunk_followed_by_other_text() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data:a\r") == []
    assert decoder.feed(b"\r") == []  # still ambiguous: "\r\r" + maybe "\n"
    assert decoder.feed(b"data:b\n\n") == [SSEEvent(data="a"), SSEEvent(data="b")]


def test_every_single_cut_and_byte_by_byte() -> None:
    stream = NATIVE.replace(b"\n", b"\r\n") * 2
    for cut in range(len(stream) + 1):
        assert decode([stream[:cut], stream[cut:]]) == [NATIVE_EVENT, NATIVE_EVENT], cut
    assert decode([bytes([b]) for b in stream]) == [NATIVE_EVENT, NATIVE_EVENT]


def test_multibyte_utf8_split_across_chunks() -> None:
    text = "é😀中"  # 2-, 4- and 3-byte sequences
    raw = f"data: {text}\n\n".encode()
    for cut in range(len(raw) + 1):
        assert decode([raw[:cut], raw[cut:]]) == [SSEEvent(data=text)], cut


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert decode([b"data: a\xffb\n\n"]) == [SSEEvent(data="a\ufffdb")]


def test_data_with_and_without_space() -> None:
    stream = b"data:x\n\ndata: x\n\ndata:  x\n\ndata\n\ndata:\n\n"
    assert [e.data for e in decode([stream])] == ["x", "x", " x", "", ""]


def test_multi_line_data_joined_with_lf() -> None:
    stream = b"data: first\ndata:second\ndata:\ndata: fourth\n\n"
    assert decode([stream]) == [SSEEvent(data="first\nsecond\n\nfourth")]


def test_fields_event_id_retry_and_unknown() -> None:
    stream = b"event: add\nid: 7\nretry: 1500\nfoo: ignored\ndata: x\n\n"
    assert decode([stream]) == [SSEEvent(data="x", event="add", id="7", retry=1500)]


def test_invalid_retry_and_id_with_nul_are_ignored() -> None:
    assert decode([b"retry: soon\nid: a\x00b\ndata: x\n\n"]) == [SSEEvent(data="x")]


def test_fields_do_not_leak_into_next_event() -> None:
    stream = b"event:error\nid:1\n:HTTP_STATUS/429\ndata:a\n\ndata:b\n\n"
    assert decode([stream]) == [
        SSEEvent(data="a", event="error", id="1", status=429),
        SSEEvent(data="b"),
    ]


def test_event_without_data_is_not_dispatched() -> None:
    assert decode([b"event:ping\nid:3\n:HTTP_STATUS/200\n\n\n\ndata:x\n\n"]) == [SSEEvent("x")]


# -- comments and HTTP_STATUS ---------------------------------------------------------------------


def test_comments_ignored() -> None:
    stream = b": keep-alive\n:\ndata: x\n: between\ndata: y\n\n"
    assert decode([stream]) == [SSEEvent(data="x\ny")]


def test_http_status_comment_captured_on_its_event() -> None:
    stream = (
        b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{}\n\n"
        b'id:2\nevent:error\n:HTTP_STATUS/429\ndata:{"code":"Throttling"}\n\n'
    )
    assert decode([stream]) == [
        SSEEvent(data="{}", event="result", id="1", status=200),
        SSEEvent(data='{"code":"Throttling"}', event="error", id="2", status=429),
    ]


def test_http_status_after_data_line_still_counts() -> None:
    assert decode([b"data:x\n:HTTP_STATUS/503\n\n"]) == [SSEEvent(data="x", status=503)]


def test_status_line_of_the_dashscope_sdk() -> None:
    assert decode([b"status: 400\ndata:x\n\n"]) == [SSEEvent(data="x", status=400)]


def test_other_comment_does_not_set_status() -> None:
    assert decode([b": HTTP status is fine\n:HTTP_STATUS/abc\ndata:x\n\n"]) == [SSEEvent("x")]


# -- end of input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        b"data: last",
        b"data: last\n",
        b"data: last\r",
        b"data: last\r\n",
    ],
)
def test_event_without_blank_line_delivered_on_close(tail: bytes) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: first\n\n" + tail) == [SSEEvent(data="first")]
    assert decoder.close() == [SSEEvent(data="last")]
    assert decoder.close() == []


def test_crlf_event_dispatched_without_waiting_for_more_bytes() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r\n\r\n") == [SSEEvent(data="x")]


def test_lf_event_dispatched_without_waiting_for_more_bytes() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n\n") == [SSEEvent(data="x")]
    assert decoder.feed(b"data: y\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(data="y")]


def test_close_with_pending_cr_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data:a\r\r") == []  # the second CR may still be half of a CRLF
    assert decoder.close() == [SSEEvent(data="a")]
    assert decoder.close() == []


def test_close_on_empty_decoder() -> None:
    assert SSEDecoder().close() == []


# -- bounds -----------------------------------------------------------------------------------------


def test_line_at_the_limit_is_accepted() -> None:
    line = b"data:" + b"x" * 59  # 64 bytes
    assert decode([line + b"\n\n"], max_line_bytes=64) == [SSEEvent(data="x" * 59)]
    decoder = SSEDecoder(max_line_bytes=64)
    assert decoder.feed(line) == []  # pending, exactly at the limit
    assert decoder.close() == [SSEEvent(data="x" * 59)]


def test_complete_line_over_limit_raises() -> None:
    decoder = SSEDecoder(max_line_bytes=64)
    with pytest.raises(SSEProtocolError, match="longer than 64"):
        decoder.feed(b"data:ok\n\ndata:" + b"x" * 60 + b"\n\n")


def test_unterminated_line_raises_with_bounded_buffering() -> None:
    decoder = SSEDecoder(max_line_bytes=64)
    assert decoder.feed(b"data:ok\n\n") == [SSEEvent(data="ok")]
    fed = 0
    with pytest.raises(SSEProtocolError):  # noqa: PT012 - the loop is what is under test
        for _ in range(1000):
            decoder.feed(b"y" * 10)
            fed += 10
    # Raised as soon as more than the limit was pending, not after buffering everything.
    assert 60 <= fed <= 64


def test_many_short_lines_in_one_huge_chunk_are_fine() -> None:
    stream = b"data: 0123456789\n\n" * 10_000
    assert len(decode([stream], max_line_bytes=32)) == 10_000


# -- iterators --------------------------------------------------------------------------------------


def test_iter_sse() -> None:
    stream = NATIVE * 3
    chunks = split_at(stream, [5, 50, 51, 120])
    assert list(iter_sse(chunks)) == [NATIVE_EVENT] * 3
    assert list(iter_sse([b"data: tail"])) == [SSEEvent(data="tail")]


def test_aiter_sse() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in split_at(NATIVE * 2 + b"data: tail", [3, 77, 150]):
            yield chunk

    async def collect() -> list[SSEEvent]:
        return [event async for event in aiter_sse(chunks())]

    assert asyncio.run(collect()) == [NATIVE_EVENT, NATIVE_EVENT, SSEEvent(data="tail")]


def test_iter_sse_max_line_bytes() -> None:
    with pytest.raises(SSEProtocolError):
        list(iter_sse([b"data:" + b"z" * 100], max_line_bytes=16))


# -- encoders ---------------------------------------------------------------------------------------


def test_encode_compat_event() -> None:
    assert encode_compat_event('{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_compat_event("a\nb") == b"data: a\ndata: b\n\n"
    assert encode_compat_event("") == b"data: \n\n"
    assert encode_compat_event("中") == "data: 中\n\n".encode()
    assert COMPAT_DONE == b"data: [DONE]\n\n"
    assert decode([COMPAT_DONE]) == [SSEEvent(data="[DONE]")]


def test_encode_native_event() -> None:
    assert encode_native_event("{}", id=3) == b"id:3\nevent:result\n:HTTP_STATUS/200\ndata:{}\n\n"
    assert encode_native_event('{"code":"X"}', id=1, event="error", status=429) == (
        b'id:1\nevent:error\n:HTTP_STATUS/429\ndata:{"code":"X"}\n\n'
    )
    assert encode_native_event("a\nb", id=2) == (
        b"id:2\nevent:result\n:HTTP_STATUS/200\ndata:a\ndata:b\n\n"
    )


# Encoder edge cases: SSE line ends only, trailing newlines, leading spaces, a leading BOM.


def test_encoders_keep_a_trailing_newline() -> None:
    assert decode([encode_compat_event("a\n")]) == [SSEEvent(data="a\n")]


def test_encoders_keep_unicode_line_separators() -> None:
    assert decode([encode_compat_event("a\u2028b\nc")]) == [SSEEvent(data="a\u2028b\nc")]


def test_native_encoder_keeps_a_leading_space() -> None:
    assert decode([encode_native_event(" x", id=1)])[0].data == " x"


def test_decoder_skips_a_leading_bom() -> None:
    assert decode([b"\xef\xbb\xbfdata: x\n\n"]) == [SSEEvent(data="x")]


# -- properties -------------------------------------------------------------------------------------

# Any text but CR (SSE cannot carry a CR in a field value: every CR is a line end).
_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r"), max_size=40)
_LINE = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=12)
_EVENTS = st.lists(
    st.builds(
        SSEEvent,
        data=_TEXT,
        event=st.none() | _LINE,
        id=st.none() | _LINE.filter(lambda s: "\0" not in s),
        retry=st.none() | st.integers(0, 10**9),
        status=st.none() | st.integers(100, 999),
    ),
    max_size=6,
)


def _field(name: str, value: str, space: bool) -> str:
    # One space after the colon is optional; a value starting with a space needs it.
    return f"{name}: {value}" if space or value.startswith(" ") else f"{name}:{value}"


def reference_encode(events: Sequence[SSEEvent], *, eol: str, space: bool, comment: str) -> bytes:
    """A straightforward SSE writer (independent of the encoders under test)."""
    return b"".join(reference_pieces(events, eol=eol, space=space, comment=comment))


def reference_pieces(
    events: Sequence[SSEEvent], *, eol: str, space: bool, comment: str
) -> list[bytes]:
    """The bytes of each event, blank line included."""
    out: list[bytes] = []
    for event in events:
        lines = [":" + comment] if comment else []
        if event.id is not None:
            lines.append(_field("id", event.id, space))
        if event.event is not None:
            lines.append(_field("event", event.event, space))
        if event.retry is not None:
            lines.append(f"retry:{event.retry}")
        if event.status is not None:
            lines.append(f":HTTP_STATUS/{event.status}")
        lines.extend(_field("data", line, space) for line in event.data.split("\n"))
        out.append((eol.join(lines) + eol + eol).encode())
    return out


@settings(max_examples=300, deadline=None)
@given(
    events=_EVENTS,
    eol=st.sampled_from(["\n", "\r\n"]),
    space=st.booleans(),
    comment=st.sampled_from(["", " keep-alive", "x"]),
    data=st.data(),
)
def test_property_split_anywhere_decodes_the_same_events(
    events: list[SSEEvent], eol: str, space: bool, comment: str, data: st.DataObject
) -> None:
    raw = reference_encode(events, eol=eol, space=space, comment=comment)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12), label="cuts")
    assert decode(split_at(raw, cuts)) == events


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            # Any text but CR (an SSE field value cannot carry one: every CR is a line end).
            st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r"), max_size=40),
            st.integers(0, 10**6),
            st.sampled_from(["result", "error", "done"]),
            st.integers(100, 599),
        ),
        max_size=6,
    ),
    data=st.data(),
)
def test_property_encoders_round_trip(
    events: list[tuple[str, int, str, int]], data: st.DataObject
) -> None:
    native = b"".join(encode_native_event(d, id=i, event=e, status=s) for d, i, e, s in events)
    compat = b"".join(encode_compat_event(d) for d, _, _, _ in events) + COMPAT_DONE
    native_cuts = data.draw(st.lists(st.integers(0, len(native)), max_size=10), label="native")
    compat_cuts = data.draw(st.lists(st.integers(0, len(compat)), max_size=10), label="compat")
    assert decode(split_at(native, native_cuts)) == [
        SSEEvent(data=d, event=e, id=str(i), status=s) for d, i, e, s in events
    ]
    assert decode(split_at(compat, compat_cuts)) == [
        *(SSEEvent(data=d) for d, _, _, _ in events),
        SSEEvent(data="[DONE]"),
    ]


def _check_dispatched_as_soon_as_complete(
    events: list[SSEEvent], eol: str, data: st.DataObject
) -> None:
    pieces = reference_pieces(events, eol=eol, space=False, comment="")
    ends = list(itertools.accumulate(len(p) for p in pieces))
    raw = b"".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8), label="cuts"))
    decoder = SSEDecoder()
    out: list[SSEEvent] = []
    for end, chunk in zip([*cuts, len(raw)], split_at(raw, cuts), strict=True):
        out.extend(decoder.feed(chunk))
        assert out == events[: sum(e <= end for e in ends)]
    assert decoder.close() == []


@settings(max_examples=150, deadline=None)
@given(events=_EVENTS, data=st.data())
def test_property_lf_events_dispatched_as_soon_as_complete(
    events: list[SSEEvent], data: st.DataObject
) -> None:
    _check_dispatched_as_soon_as_complete(events, "\n", data)


@settings(max_examples=150, deadline=None)
@given(events=_EVENTS.filter(bool), data=st.data())
def test_property_crlf_events_dispatched_as_soon_as_complete(
    events: list[SSEEvent], data: st.DataObject
) -> None:
    _check_dispatched_as_soon_as_complete(events, "\r\n", data)
