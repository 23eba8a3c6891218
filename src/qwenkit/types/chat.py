"""Canonical chat messages and their content parts.

One shape for both wire formats: OpenAI-compatible mode and DashScope native mode carry the same
roles and (for text models) the same content; the codecs in ``qwenkit.wire`` translate the few
places where they differ (native multimodal parts have no ``type`` key, for example).

- ``SystemMessage``, ``UserMessage``, ``AssistantMessage``, ``ToolMessage`` (and ``DeveloperMessage``,
  which the compatible mode may accept) form the ``Message`` union, discriminated by ``role``.
- Content is a string or a list of typed parts (``text``, ``image_url``, ``input_audio``,
  ``video_url``, ``video``); a part of a type this version does not know becomes ``OtherPart`` and is
  passed on unchanged.
- ``cache_control`` markers (explicit context cache) are kept on text parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, get_origin

from pydantic import Discriminator, Field, Tag, TypeAdapter

from qwenkit.types._base import WireModel
from qwenkit.types.tools import ToolCall


class _Fixed(WireModel):
    """A model whose discriminating literal fields (``role``, ``type``) always serialise."""

    _literal_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._literal_fields = frozenset(
            name
            for name, field in cls.model_fields.items()
            if get_origin(field.annotation) is Literal
        )

    def model_post_init(self, context: Any, /) -> None:
        self.model_fields_set.update(self._literal_fields)


class CacheControl(WireModel):
    """Explicit context-cache marker: ``{"type": "ephemeral"}``."""

    type: Literal["ephemeral"] = "ephemeral"


class TextPart(_Fixed):
    type: Literal["text"] = "text"
    text: str
    cache_control: CacheControl | None = None


class ImageURL(WireModel):
    url: str
    detail: str | None = None


class ImageURLPart(_Fixed):
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


class InputAudio(WireModel):
    data: str
    format: str | None = None


class InputAudioPart(_Fixed):
    type: Literal["input_audio"] = "input_audio"
    input_audio: InputAudio


class VideoURL(WireModel):
    url: str


class VideoURLPart(_Fixed):
    type: Literal["video_url"] = "video_url"
    video_url: VideoURL


class VideoFramesPart(_Fixed):
    """A video given as a list of frame image URLs (``{"type": "video", "video": [...]}``)."""

    type: Literal["video"] = "video"
    video: list[str]


class OtherPart(WireModel):
    """A content part of a type qwenkit does not model; every field is kept as received."""

    type: str


def _part_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    return kind if kind in _KNOWN_PARTS else "other"


_KNOWN_PARTS = frozenset({"text", "image_url", "input_audio", "video_url", "video"})

ContentPart = Annotated[
    Annotated[TextPart, Tag("text")]
    | Annotated[ImageURLPart, Tag("image_url")]
    | Annotated[InputAudioPart, Tag("input_audio")]
    | Annotated[VideoURLPart, Tag("video_url")]
    | Annotated[VideoFramesPart, Tag("video")]
    | Annotated[OtherPart, Tag("other")],
    Discriminator(_part_tag),
]

Content = str | list[ContentPart]


class _MessageBase(_Fixed):
    name: str | None = None

    @property
    def text(self) -> str:
        """The text of the message: the string content, or its text parts joined."""
        content = getattr(self, "content", None)
        return content_text(content)


class SystemMessage(_MessageBase):
    role: Literal["system"] = "system"
    content: Content


class DeveloperMessage(_MessageBase):
    role: Literal["developer"] = "developer"
    content: Content


class UserMessage(_MessageBase):
    role: Literal["user"] = "user"
    content: Content


class AssistantMessage(_MessageBase):
    """An answer of the model, or a turn of history.

    ``reasoning_content`` is the model's thinking. It is kept apart from ``content`` everywhere in
    qwenkit and never shown to end users unless they ask for it.
    """

    role: Literal["assistant"] = "assistant"
    content: Content | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None
    partial: bool | None = None


class ToolMessage(_MessageBase):
    role: Literal["tool"] = "tool"
    content: Content
    tool_call_id: str


Message = Annotated[
    Annotated[SystemMessage, Tag("system")]
    | Annotated[UserMessage, Tag("user")]
    | Annotated[AssistantMessage, Tag("assistant")]
    | Annotated[ToolMessage, Tag("tool")]
    | Annotated[DeveloperMessage, Tag("developer")],
    Field(discriminator="role"),
]

AnyMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage | DeveloperMessage
_MESSAGE_CLASSES = (SystemMessage, UserMessage, AssistantMessage, ToolMessage, DeveloperMessage)

_MESSAGE_LIST: TypeAdapter[list[Message]] = TypeAdapter(list[Message])
_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)


def content_text(content: Content | None) -> str:
    """The plain text of a content value (string, or the ``text`` parts of a list, joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))


def parse_message(value: AnyMessage | Mapping[str, Any]) -> AnyMessage:
    """Accept a canonical message or a plain/OpenAI-style dict and return the canonical message."""
    if isinstance(value, _MESSAGE_CLASSES):
        return value
    return _MESSAGE.validate_python(value)


def parse_messages(values: Iterable[AnyMessage | Mapping[str, Any]]) -> list[AnyMessage]:
    """Accept canonical messages or dicts; dicts are validated in one pass."""
    items: Sequence[AnyMessage | Mapping[str, Any]] = list(values)
    if all(isinstance(v, Mapping) for v in items):
        return list(_MESSAGE_LIST.validate_python(items))
    return [parse_message(v) for v in items]
