"""Server-sent events: an incremental, bounded decoder and the two framings DashScope speaks.

Written by hand because neither wire format is served well by a general SSE library:

- the native format marks each event with an ``:HTTP_STATUS/NNN`` comment line, which every standard
  parser drops, but which is the only place a mid-stream error states its status;
- a client must accept any chunk boundary (a split inside a UTF-8 sequence, between ``\\r`` and
  ``\\n``), and a server-side relay must never buffer without bound when an upstream sends a line
  that never ends.

The decoder is sans-IO (``feed(bytes) -> events``), so the SDK, the gateway and the tests drive the
same code from sync, async or plain lists. Line endings may be CRLF, LF or CR (WHATWG rules); one
space after the field colon is optional (compatible mode writes ``data: {...}``, native mode writes
``data:{...}``). Comments are ignored except ``:HTTP_STATUS/NNN``, which sets ``status`` on the
event being built.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

from qwenkit._exceptions import WireError

DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
"""8 MiB: a native cumulative chunk of a very long answer fits; a runaway line does not."""

_EOL = re.compile(rb"\r\n|\r|\n")
_EOL_TEXT = re.compile(r"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
_STATUS = re.compile(r"HTTP_STATUS/(\d{3})")


class SSEProtocolError(WireError):
    """The byte stream is not a valid or acceptable event stream (for example a line too long)."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    status: int | None = None
    """The status of an ``:HTTP_STATUS/NNN`` comment inside this event, when there was one."""


class SSEDecoder:
    """Feed bytes in any pieces; get complete events out.

    >>> d = SSEDecoder()
    >>> d.feed(b"id:1\\nevent:result\\n:HTTP_STATUS/200\\ndata:{}\\n") + d.feed(b"\\n")
    [SSEEvent(data='{}', event='result', id='1', retry=None, status=200)]
    """

    __slots__ = (
        "_buf",
        "_data",
        "_event",
        "_has_data",
        "_id",
        "_max_line",
        "_retry",
        "_scan",
        "_started",
        "_status",
        "_tail_cr",
    )

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._max_line = max_line_bytes
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf already searched for a line end: never rescanned
        self._started = False
        self._tail_cr = False  # the buffer ends with a CR that may be the first half of a CRLF
        self._reset()

    def _reset(self) -> None:
        self._data: list[str] = []
        self._has_data = False
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._status: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; return the events they complete (possibly none)."""
        buf = self._buf
        if not self._started:
            if not buf and len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                buf += chunk  # possibly the start of a BOM: decide when more bytes come
                return []
            buf += chunk
            if len(buf) < len(_BOM) and _BOM.startswith(bytes(buf)):
                return []
            self._started = True
            if buf.startswith(_BOM):
                del buf[: len(_BOM)]  # WHATWG: one leading BOM is skipped
        else:
            buf += chunk
        events: list[SSEEvent] = []
        if b"\r" not in chunk and not self._tail_cr:
            return self._feed_lf(buf, events)
        pos = 0
        end = len(buf)
        search_from = self._scan
        while True:
            match = _EOL.search(buf, max(pos, search_from))
            if match is None:
                break
            start = match.start()
            if match.end() == end and match.end() - start == 1 and buf[start] == 0x0D:
                break  # a lone CR at the very end may be the first half of CRLF: wait
            if start - pos > self._max_line:
                raise SSEProtocolError(f"SSE line longer than {self._max_line} bytes")
            event = self._line(bytes(buf[pos:start]))
            if event is not None:
                events.append(event)
            pos = match.end()
        if pos:
            del buf[:pos]
        # What is left holds no line end, except perhaps a final CR awaiting its LF.
        self._tail_cr = buf.endswith(b"\r")
        self._scan = len(buf) - 1 if self._tail_cr else len(buf)
        if len(buf) > self._max_line:
            raise SSEProtocolError(f"SSE line longer than {self._max_line} bytes")
        return events

    def _feed_lf(self, buf: bytearray, events: list[SSEEvent]) -> list[SSEEvent]:
        """The common case, LF line ends only: split in C instead of one regex search a line."""
        last = buf.rfind(b"\n", self._scan)
        if last >= 0:
            line = self._line
            for raw in bytes(buf[:last]).split(b"\n"):
                if len(raw) > self._max_line:
                    raise SSEProtocolError(f"SSE line longer than {self._max_line} bytes")
                event = line(raw)
                if event is not None:
                    events.append(event)
            del buf[: last + 1]
        self._scan = len(buf)
        if self._scan > self._max_line:
            raise SSEProtocolError(f"SSE line longer than {self._max_line} bytes")
        return events

    def close(self) -> list[SSEEvent]:
        """End of input: a last event without its blank line is still delivered."""
        events: list[SSEEvent] = []
        if self._buf:
            tail = bytes(self._buf)
            if tail.endswith(b"\r"):
                tail = tail[:-1]  # a final line end, not data
            if not self._started and tail.startswith(_BOM):
                tail = tail[len(_BOM) :]
            self._buf.clear()
            self._scan = 0
            self._tail_cr = False
            event = self._line(tail)
            if event is not None:
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _line(self, raw: bytes) -> SSEEvent | None:
        if not raw:
            return self._dispatch()
        line = raw.decode("utf-8", errors="replace")
        if line[0] == ":":
            status = _STATUS.match(line, 1)
            if status is not None:
                self._status = int(status.group(1))
            return None
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        elif name == "status" and value.strip().isdigit():
            self._status = int(value.strip())  # the dashscope SDK's own (unseen on the wire) form
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._has_data:
            # WHATWG: an event without data is not dispatched; its fields are discarded.
            self._reset()
            return None
        event = SSEEvent(
            data="\n".join(self._data),
            event=self._event,
            id=self._id,
            retry=self._retry,
            status=self._status,
        )
        self._reset()
        return event


def iter_sse(
    chunks: Iterable[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[SSEEvent]:
    decoder = SSEDecoder(max_line_bytes=max_line_bytes)
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


async def aiter_sse(
    chunks: AsyncIterable[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> AsyncIterator[SSEEvent]:
    decoder = SSEDecoder(max_line_bytes=max_line_bytes)
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.close():
        yield event


def _data_lines(prefix: str, data: str) -> str:
    """``data`` as one ``prefix``-led line per line of text (SSE line ends only: CR, LF, CRLF).

    A line that starts with a space gets one more space after the colon, since decoders strip
    exactly one (the compatible prefix ``data: `` already carries it)."""
    lines = _EOL_TEXT.split(data) if ("\n" in data or "\r" in data) else [data]
    pad = "" if prefix.endswith(" ") else " "
    return "\n".join(prefix + (pad + line if line[:1] == " " else line) for line in lines)


def encode_compat_event(data: str) -> bytes:
    """One compatible-mode event: ``data: {json}`` and a blank line."""
    return (_data_lines("data: ", data) + "\n\n").encode()


COMPAT_DONE = b"data: [DONE]\n\n"


def encode_native_event(data: str, *, id: int, event: str = "result", status: int = 200) -> bytes:
    """One native event, exactly as DashScope frames it (no space after any colon)::

    id:1
    event:result
    :HTTP_STATUS/200
    data:{...}
    """
    return (
        f"id:{id}\nevent:{event}\n:HTTP_STATUS/{status}\n{_data_lines('data:', data)}\n\n".encode()
    )
