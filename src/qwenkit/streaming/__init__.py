"""Streaming helpers built on the canonical events: assembling a stream into a response."""

from qwenkit.streaming.assembler import StreamAssembler, StreamFailed, assemble

__all__ = ["StreamAssembler", "StreamFailed", "assemble"]
