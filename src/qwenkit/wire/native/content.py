"""Message content on the native wire: multimodal parts without a ``type`` key.

The native multimodal endpoint (``multimodal-generation``) writes each content part as an object
named by its one key, with no ``type``::

    [{"image": "https://.../a.png"}, {"text": "What is this?"}]
    [{"video": "https://.../v.mp4"}]            # a video file
    [{"video": ["https://.../f1.jpg", ...]}]    # a video given as frames
    [{"audio": "https://.../a.mp3"}]

Canonical parts are the OpenAI-compatible ones; the mapping is:

=================================  =====================================================
native part                        canonical part
=================================  =====================================================
``{"text": t}``                    ``TextPart(text=t)`` (``cache_control`` kept)
``{"image": url}``                 ``ImageURLPart(image_url={"url": url})``
``{"video": url}``                 ``VideoURLPart(video_url={"url": url})``
``{"video": [url, ...]}``          ``VideoFramesPart(video=[url, ...])``
``{"audio": url}``                 ``InputAudioPart(input_audio={"data": url})``
any other object without ``type``  ``OtherPart(type=<its first key>, **the object)``
=================================  =====================================================

Other keys beside the main one (``min_pixels``, ``max_pixels``, ``fps``...) become extras of the
canonical part and are written back beside the main key. A part that already has a ``type`` key (the
OpenAI shape, which the text endpoint uses for ``cache_control`` markers) is left for the canonical
model to parse. ``ImageURL.detail`` and ``InputAudio.format`` have no native equivalent and are
not written. Answers of multimodal models carry their content in the same shape
(``[{"text": "..."}]``), so responses and stream chunks use the same functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qwenkit.types import (
    ContentPart,
    ImageURLPart,
    InputAudioPart,
    OtherPart,
    TextPart,
    VideoFramesPart,
    VideoURLPart,
)

__all__ = ["decode_content", "decode_part", "encode_content", "encode_part", "native_text"]


def decode_part(part: Any) -> Any:
    """One native part as the canonical wire dict (parts that already have ``type`` pass through)."""
    if not isinstance(part, Mapping) or "type" in part:
        return part
    rest = dict(part)
    if "text" in rest and isinstance(rest["text"], str):
        return {"type": "text", **rest}
    if isinstance(rest.get("image"), str):
        url = rest.pop("image")
        return {"type": "image_url", "image_url": {"url": url}, **rest}
    video = rest.get("video")
    if isinstance(video, str):
        rest.pop("video")
        return {"type": "video_url", "video_url": {"url": video}, **rest}
    if isinstance(video, list):
        return {"type": "video", **rest}
    if isinstance(rest.get("audio"), str):
        data = rest.pop("audio")
        return {"type": "input_audio", "input_audio": {"data": data}, **rest}
    return {"type": next(iter(rest), ""), **rest}


def decode_content(content: Any) -> Any:
    """Native message content (string or list of parts) as canonical wire data."""
    if isinstance(content, Sequence) and not isinstance(content, (str, bytes)):
        return [decode_part(part) for part in content]
    return content


def encode_part(part: ContentPart) -> dict[str, Any]:
    """One canonical part in the native (``type``-less) shape."""
    extras = part.extras
    if isinstance(part, TextPart):
        out: dict[str, Any] = {"text": part.text}
        if part.cache_control is not None:
            out["cache_control"] = part.cache_control.to_wire()
        return {**out, **extras}
    if isinstance(part, ImageURLPart):
        return {"image": part.image_url.url, **extras}
    if isinstance(part, VideoURLPart):
        return {"video": part.video_url.url, **extras}
    if isinstance(part, VideoFramesPart):
        return {"video": list(part.video), **extras}
    if isinstance(part, InputAudioPart):
        return {"audio": part.input_audio.data, **extras}
    assert isinstance(part, OtherPart)
    if part.type == "" or part.type in extras:  # decoded from a native part: drop the marker
        return dict(extras)
    return part.to_wire()


def encode_content(content: str | list[ContentPart] | None) -> Any:
    """Canonical content in the native part shape (strings and ``None`` unchanged)."""
    if content is None or isinstance(content, str):
        return content
    return [encode_part(part) for part in content]


def native_text(content: Any) -> str | None:
    """The text of a native content value in a chunk or answer: a string, or the ``text`` of the
    parts of a list, joined. ``None`` when there is no text at all."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)
        ]
        return "".join(texts) if texts else None
    return None
