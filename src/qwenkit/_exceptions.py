"""The one exception tree of qwenkit. Catch ``QwenError`` to catch anything qwenkit raises.

::

    QwenError
    ├── UsageError (ValueError)            a caller's mistake, caught before any network call
    │   ├── ConfigError                    settings or a config file that cannot be used
    │   ├── UnknownModelError (KeyError)   a model name the catalog does not know
    │   ├── UnknownTaskError               a task kind the router does not know
    │   ├── UnknownTokenizerError          no Qwen vocabulary for this name
    │   └── PriceUnavailableError (LookupError)
    ├── WireError (ValueError)             bytes or JSON that are not a valid message of a wire format
    │   ├── SSEProtocolError               a broken or over-long event stream
    │   ├── CompatError                    → CompatRequestError, CompatResponseError, CompatStreamError
    │   └── NativeError                    → NativeRequestError, NativeResponseError, NativeStreamError
    └── DataError                          a packaged or user data file that cannot be used
        ├── CatalogDataError (ValueError)
        └── VocabularyError (RuntimeError) a tokenizer rank file missing or not matching its hash

Each subclass also derives from the builtin it used to be (``ValueError``, ``KeyError``...), so
``except ValueError`` keeps working. Errors reported by the service (with their HTTP status,
DashScope code, message and request id) join this tree with the SDK, under ``APIError``.
"""

from __future__ import annotations


class QwenError(Exception):
    """Base of every exception qwenkit raises."""


class UsageError(QwenError, ValueError):
    """The caller asked for something that cannot work; nothing was sent."""


class WireError(QwenError, ValueError):
    """Data that is not a valid message of one of the wire formats."""


class DataError(QwenError):
    """A data file (catalog, routes, tokenizer ranks) that cannot be used."""
