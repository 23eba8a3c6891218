"""``ThinkingPolicy``: whether the call thinks, what ``enable_thinking`` to send, and streaming.

The rules it enforces (reference §5, §7):

- thinking on a non-streaming call is a 400 (``enable_thinking must be set to false for
  non-streaming calls``), so thinking always streams upstream; a caller who wanted one result
  gets the events aggregated by the client, never the 400;
- hybrid models that think by default (Qwen3.5, open-source Qwen3) get ``enable_thinking: false``
  when the caller does not want thinking, so their non-streaming calls work;
- models that always think reject ``enable_thinking: false``: asking for no thinking is an error
  here, and nothing is sent for them unless the caller sent it;
- JSON mode (``response_format`` ``json_object``/``json_schema``) is rejected with thinking on,
  so JSON mode turns thinking off; asking for both is an error.

A wish that came from the task's route rather than the caller (``call.state["thinking_source"]
== "route"``) never raises: it yields to the model and to JSON mode, with a note.
"""

from __future__ import annotations

from qwenkit._core.pipeline import Call
from qwenkit._core.policies._base import THINKING_SOURCE, BeforeCall, updated
from qwenkit._exceptions import ValidationError
from qwenkit.catalog import ModelProfile, ThinkingMode
from qwenkit.types import ChatRequest


class ThinkingPolicy(BeforeCall):
    """Decide the effective thinking of a call; set ``enable_thinking`` and ``upstream_stream``.

    Effective thinking: ``call.thinking`` if set, else ``request.enable_thinking`` if set, else
    the model's default (hybrid_on and always think; unknown models are taken not to). It is
    recorded in ``call.state["thinking"]``.
    """

    def prepare(self, call: Call) -> None:
        request = call.request
        profile = call.profile
        mode = profile.thinking if profile is not None else None
        name = profile.name if profile is not None else request.model
        wish = call.thinking if call.thinking is not None else request.enable_thinking
        from_route = call.thinking is not None and call.state.get(THINKING_SOURCE) == "route"
        _reject(name, mode, None if from_route else wish, json_mode=request.wants_json)

        thinking = _effective(call, name, mode, wish, json_mode=request.wants_json)
        call.state["thinking"] = thinking
        call.request = updated(request, enable_thinking=_flag(request, mode, wish, thinking))
        if thinking:
            _check_budget(request.thinking_budget, name, profile)
            if request.thinking_budget is not None:
                call.notes.append(f"thinking_budget {request.thinking_budget} passed through")
        elif request.thinking_budget is not None:
            call.notes.append("thinking_budget passed through, but has no effect: thinking is off")

        stream_only = profile is not None and profile.stream_only
        call.upstream_stream = thinking or stream_only or call.stream
        if call.upstream_stream and not call.stream:
            why = "thinking is on" if thinking else f"{name} only answers streaming calls"
            call.notes.append(f"the upstream call streams ({why}); its events are aggregated")

    def __repr__(self) -> str:
        return "ThinkingPolicy()"


def _reject(name: str, mode: ThinkingMode | None, wish: bool | None, *, json_mode: bool) -> None:
    """Raise for what the service would refuse; ``wish`` is the caller's (``None``: none)."""
    if json_mode and mode is ThinkingMode.ALWAYS:
        raise ValidationError(
            f"{name} always thinks, and the service rejects JSON mode with thinking on: "
            "drop response_format or use a model whose thinking can be turned off",
            param="response_format",
        )
    if json_mode and wish:
        raise ValidationError(
            "JSON mode (response_format) cannot be combined with thinking: the service rejects "
            "enable_thinking=true with JSON mode; ask for one or the other",
            param="enable_thinking",
        )
    if mode is ThinkingMode.ALWAYS and wish is False:
        raise ValidationError(
            f"{name} always thinks; the service rejects enable_thinking=false. Leave thinking "
            "unset, or pick a hybrid model (thinking off) or a model that does not think",
            param="enable_thinking",
        )
    if mode is ThinkingMode.NONE and wish:
        raise ValidationError(
            f"{name} does not think: drop thinking=True or pick a model that thinks",
            param="enable_thinking",
        )


def _effective(
    call: Call, name: str, mode: ThinkingMode | None, wish: bool | None, *, json_mode: bool
) -> bool:
    """Whether the call thinks; a wish the model or JSON mode overrules leaves a note."""
    if mode is ThinkingMode.ALWAYS:
        if wish is False:
            call.notes.append(f"thinking on: {name} always thinks (the route asked for off)")
        return True
    if mode is ThinkingMode.NONE:
        if wish:
            call.notes.append(f"thinking off: {name} does not think (the route asked for on)")
        return False
    default = call.profile.thinks_by_default if call.profile is not None else False
    thinking = default if wish is None else wish
    if thinking and json_mode:
        overruled = "the model's default" if wish is None else "the route's wish"
        call.notes.append(f"thinking off for JSON mode (overrules {overruled})")
        return False
    return thinking


def _flag(
    request: ChatRequest, mode: ThinkingMode | None, wish: bool | None, thinking: bool
) -> bool | None:
    """The ``enable_thinking`` to send (``None``: leave it out)."""
    sent = request.enable_thinking
    if mode is ThinkingMode.ALWAYS:
        return True if sent else None  # the caller's own true only; never a false
    if thinking:
        return True
    if mode is ThinkingMode.HYBRID_ON:
        return False  # on by default: say no explicitly, or a non-streaming call fails
    if mode is None:  # unknown model: say no when asked for no (it may think by default)
        return False if wish is False or sent is not None else None
    # none / hybrid_off: off by default; send only what the caller sent, made consistent
    return False if sent is not None else None


def _check_budget(budget: int | None, name: str, profile: ModelProfile | None) -> None:
    if budget is None:
        return
    if budget < 1:
        raise ValidationError(
            f"thinking_budget must be at least 1, got {budget}", param="thinking_budget"
        )
    limit = profile.max_reasoning_tokens if profile is not None else None
    if limit is not None and budget > limit:
        raise ValidationError(
            f"thinking_budget {budget} exceeds the max reasoning length of {name} "
            f"({limit} tokens): ask for at most {limit}",
            param="thinking_budget",
        )
