"""qwenkit: run products on the Qwen API (Alibaba Cloud Model Studio / DashScope) in production."""

from qwenkit._version import __version__

__all__ = ["__version__"]
