"""Every error text the emulator sends, in one place, with where each one comes from.

Sources: ``shared/reference/dashscope-wire.md`` (sections 2.4, 4.1, 5, 6.3, 7, 8), the QwenCloud
"Error messages" page (docs.qwencloud.com/api-reference/preparation/error-messages, "QC" below)
and responses users pasted into public issues. QC's headings are tidied (capitalised, "please"
dropped, "preceeding" corrected), so where a raw capture exists the capture wins.

The algo-layer prefix ``<400> InternalError.Algo.InvalidParameter: `` is on every compatible-mode
capture of the tool-order, tool-arguments, json-keyword, json-with-thinking, input-length,
max_tokens and thinking-only rules, and *not* on the non-streaming thinking rule. On the native
wire the reference has no sample for most of these; two native captures (spring-ai-alibaba#4533,
``function.arguments``, 2026; agentscope#772, tool-call order, 2025) carry the same prefix, so the
native wire here carries it too, on the same rules. The one native sample without it
(``Range of input length should be [1, 6000]``, qwen-free-api#23) predates the prefix on both
wires. Per rule ("*": with the prefix):

- unknown model: 404 ``ModelNotFound``; compat ``The model `X` does not exist or you do not have
  access to it.``, native ``Model can not be found.`` (reference §8; QC's heading gives the 404);
- empty ``messages``: ``[] is too short`` (QC; whether it has the prefix is UNCONFIRMED: none);
- * tool message without a preceding ``tool_calls``: compat capture, reference §6.3, "preceeding";
- * tool-call arguments not JSON: native capture (spring-ai-alibaba#4533), compat (nanobot#1487);
- * ``Range of n should be [1, 4]`` (QC; the prefix is a guess by analogy);
- * ``Range of max_tokens should be [1, N]`` (QC; prefixed in a DashScope fixture);
- ``The model X does not support enable_thinking.`` (QC; ``InvalidParameter.NotSupportEnable
  Thinking``), only when ``quirks.thinking_flag_on_non_thinking_model`` is ``error``;
- * ``The value of the enable_thinking parameter is restricted to True.`` (reference §5.1);
- ``parameter.enable_thinking must be set to false for non-streaming calls`` (reference §5.2);
- ``This model only support stream mode, please enable the stream parameter to access the
  model. `` with the trailing space of the compat capture; native QwQ capture; ``current user api
  does not support http call`` for open-source Qwen3 (reference §2.4, S4);
- * ``'messages' must contain the word 'json' ...`` (reference §7) and ``Json mode response is not
  supported when enable_thinking is true`` (reference §5.5);
- * ``Range of input length should be [1, N]`` (reference §8);
- ``Required body invalid, please check the request body format.`` (captures; QC drops "please");
- 413 ``BadRequest.TooLarge`` ``Payload Too Large`` (reference §8; the 413 is UNCONFIRMED).

Authentication, throttling, faults and tasks are documented at their functions below.
"""

from __future__ import annotations

from typing import Literal

from qwenkit.types import ErrorInfo

Wire = Literal["compat", "native"]
"""The wire format a request came in on (OpenAI-compatible or native DashScope)."""

ALGO_PREFIX = "<400> InternalError.Algo.InvalidParameter: "

_PARAM = ("invalid_parameter_error", "invalid_request_error")
"""Compatible ``code``/``type`` of every ``InvalidParameter`` error (reference §8)."""


def _error(
    status: int, code: str, text: str, compat: str | None = None, kind: str = ""
) -> ErrorInfo:
    """An error with its compatible ``code`` (and ``type``: ``kind``, else the code itself)."""
    return ErrorInfo(status, code, text, compat_code=compat, compat_type=(kind or compat))


def _invalid(message: str, *, algo: bool = True, code: str = "InvalidParameter") -> ErrorInfo:
    text = ALGO_PREFIX + message if algo else message
    return _error(400, code, text, *_PARAM)


# -- request validation ---------------------------------------------------------------------------


def model_not_found(model: str, *, wire: Wire) -> ErrorInfo:
    """404 ``ModelNotFound`` / ``model_not_found`` (QC's heading gives the status)."""
    if wire == "compat":
        text = f"The model `{model}` does not exist or you do not have access to it."
    else:
        text = "Model can not be found."
    return _error(404, "ModelNotFound", text, "model_not_found", "invalid_request_error")


def empty_messages() -> ErrorInfo:
    """QC: ``[] is too short`` (cause: empty messages array). UNCONFIRMED: whether the algo prefix
    goes in front (no capture); the other text seen for bad messages, ``Role must be user or
    assistant and Content length must be greater than 0`` (a Go mock, reference §6.3), reads as an
    empty *content* complaint, so it is not used here."""
    return _invalid("[] is too short", algo=False)


def tool_without_tool_calls() -> ErrorInfo:
    """Verbatim compat capture (reference §6.3), misspelling and double quotes included."""
    return _invalid(
        'messages with role "tool" must be a response to a preceeding message with "tool_calls".'
    )


def tool_arguments_not_json() -> ErrorInfo:
    """Verbatim native capture (spring-ai-alibaba#4533) and compat (nanobot#1487)."""
    return _invalid('The "function.arguments" parameter of the code model must be in JSON format.')


def n_out_of_range(max_n: int) -> ErrorInfo:
    """QC ``Range of n should be [1, 4]``; the upper bound follows ``limits.max_n``."""
    return _invalid(f"Range of n should be [1, {max_n}]")


def max_tokens_out_of_range(limit: int) -> ErrorInfo:
    """QC; the prefixed form is in a DashScope fixture (``InternalError.Algo.InvalidParameter:
    Range of max_tokens should be [1, 8192]``)."""
    return _invalid(f"Range of max_tokens should be [1, {limit}]")


def thinking_not_supported(model: str) -> ErrorInfo:
    """QC, code ``InvalidParameter.NotSupportEnableThinking`` (only with the quirk set to error)."""
    return _invalid(
        f"The model {model} does not support enable_thinking.",
        algo=False,
        code="InvalidParameter.NotSupportEnableThinking",
    )


def thinking_restricted_to_true() -> ErrorInfo:
    """Captured with the prefix (reference §5.1; several client logs)."""
    return _invalid("The value of the enable_thinking parameter is restricted to True.")


def thinking_requires_stream() -> ErrorInfo:
    """Verbatim on both wires, without the prefix (reference §5.2)."""
    return _invalid(
        "parameter.enable_thinking must be set to false for non-streaming calls", algo=False
    )


def stream_only() -> ErrorInfo:
    """QwQ and other stream-only models. The compat capture ends with a space; kept on both wires
    (the native capture is line-wrapped in a comment, so its end is not visible)."""
    return _invalid(
        "This model only support stream mode, please enable the stream parameter to access the "
        "model. ",
        algo=False,
    )


def http_call_not_supported() -> ErrorInfo:
    """Open-source Qwen3 called without streaming (reference §2.4, S4)."""
    return _invalid("current user api does not support http call", algo=False)


def json_keyword_missing() -> ErrorInfo:
    """Verbatim compat capture (reference §7, agno#5317)."""
    return _invalid(
        "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
        "'json_object'."
    )


def json_mode_with_thinking() -> ErrorInfo:
    """Captured through a relay (reference §5.5); no final period."""
    return _invalid("Json mode response is not supported when enable_thinking is true")


def input_too_long(limit: int) -> ErrorInfo:
    """Verbatim compat captures (reference §8); ``limit`` is the model's max input."""
    return _invalid(f"Range of input length should be [1, {limit}]")


def body_invalid() -> ErrorInfo:
    """A body that is not a JSON object. Captured on native and on compatible-mode routes (a mock
    of the compatible route even answers in the native flat envelope). UNCONFIRMED compat code."""
    return _invalid("Required body invalid, please check the request body format.", algo=False)


def payload_too_large() -> ErrorInfo:
    """``BadRequest.TooLarge`` ``Payload Too Large`` (reference §8); HTTP 413 UNCONFIRMED."""
    return _error(
        413,
        "BadRequest.TooLarge",
        "Payload Too Large",
        "BadRequest.TooLarge",
        "invalid_request_error",
    )


# -- authentication -------------------------------------------------------------------------------


def no_api_key() -> ErrorInfo:
    """No ``Authorization`` header: ``No API-key provided.`` (official task-API examples; a capture
    shows the compatible route answering this in the native flat envelope, not the OpenAI one)."""
    return _error(
        401, "InvalidApiKey", "No API-key provided.", "invalid_api_key", "invalid_request_error"
    )


def invalid_api_key(*, wire: Wire) -> ErrorInfo:
    """Unknown key, or a key of another region (reference §1.1, §8). Native ``Invalid API-key
    provided.``; compat ``Incorrect API key provided.`` — the older exact texts; newer responses
    append `` For details, see: https://www.alibabacloud.com/help/en/model-studio/error-code#apikey-error``
    (not sent: the live fixture of 2026 in reference §8 has the short text)."""
    text = "Incorrect API key provided." if wire == "compat" else "Invalid API-key provided."
    return _error(401, "InvalidApiKey", text, "invalid_api_key", "invalid_request_error")


# -- throttling -----------------------------------------------------------------------------------


def rate_quota(*, wire: Wire) -> ErrorInfo:
    """RPM: native ``Throttling.RateQuota`` ``Requests rate limit exceeded, please try again later.``
    (reference §8). Compat: code and type ``limit_requests`` (QC heading; a captured body) with the
    text of a captured body; the type is the code, as with ``insufficient_quota``."""
    if wire == "compat":
        text = (
            "You have exceeded your current request limit. For details, see: "
            "https://help.aliyun.com/zh/model-studio/error-code#rate-limit"
        )
    else:
        text = "Requests rate limit exceeded, please try again later."
    return _error(429, "Throttling.RateQuota", text, "limit_requests")


def allocation_quota(*, wire: Wire) -> ErrorInfo:
    """TPM: native ``Allocated quota exceeded, please increase your quota limit.``; compat
    ``insufficient_quota`` with its own text (reference §8, oh-my-pi#8496)."""
    if wire == "compat":
        text = (
            "You exceeded your current quota, please check your plan and billing details. For "
            "details, see: https://help.aliyun.com/zh/model-studio/error-code#token-limit"
        )
    else:
        text = "Allocated quota exceeded, please increase your quota limit."
    return _error(429, "Throttling.AllocationQuota", text, "insufficient_quota")


def burst_rate() -> ErrorInfo:
    """Burst protection: code ``Throttling.BurstRate`` / compat ``limit_burst_rate`` and the full
    text from QC (the reference has only the first sentence and no code); compat type guessed."""
    return _error(
        429,
        "Throttling.BurstRate",
        "Request rate increased too quickly. To ensure system stability, please adjust your client "
        "logic to scale requests more smoothly over time.",
        "limit_burst_rate",
    )


# -- faults ---------------------------------------------------------------------------------------


def internal_error() -> ErrorInfo:
    """500 ``InternalError`` (reference §8 wording; QC now shows ``An internal error has occured,
    try again later or contact service support.``)."""
    return _error(
        500,
        "InternalError",
        "An internal error has occurred, please try again later or contact service support.",
        "internal_error",
    )


def model_unavailable() -> ErrorInfo:
    """503 ``ModelUnavailable`` (reference §8; compat code UNCONFIRMED, left to ``ERROR_CODES``)."""
    return _error(503, "ModelUnavailable", "Model is unavailable, please try again later.")


# -- asynchronous tasks ---------------------------------------------------------------------------

TASK_STATUS_UNKNOWN = "UNKNOWN"
"""``task_status`` reported for a task id that is unknown or expired (reference §4, INFERRED):
the query answers 200 with this status rather than an error."""


def async_not_supported() -> ErrorInfo:
    """``X-DashScope-Async: enable`` on text generation: 403 ``AccessDenied`` ``current user api
    does not support asynchronous calls`` (QC "403-AccessDenied/access_denied" and several
    captures; this settles the guess of reference §4.1, which said 400 InvalidParameter)."""
    return _error(
        403,
        "AccessDenied",
        "current user api does not support asynchronous calls",
        "access_denied",
        "invalid_request_error",
    )


def task_not_cancellable() -> ErrorInfo:
    """Cancel of a task that is not PENDING (official task-API error table)."""
    return _error(
        400,
        "UnsupportedOperation",
        "Failed to cancel the task, please confirm if the task is in PENDING status.",
    )
