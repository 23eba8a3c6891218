"""Streaming helpers built on the canonical events: assembling a stream into a response, and
splitting ``<think>`` reasoning a server left in ``content`` back out (``think_tags``)."""

from qwenkit.streaming.assembler import StreamAssembler, StreamFailed, assemble
from qwenkit.streaming.think_tags import ThinkTagSplitter, split_think_tags

__all__ = ["StreamAssembler", "StreamFailed", "ThinkTagSplitter", "assemble", "split_think_tags"]
