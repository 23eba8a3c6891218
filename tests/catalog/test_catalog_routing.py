"""The task router: default policy for every kind, free-text routing, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenkit.catalog import (
    SUMMARISE,
    CatalogDataError,
    Router,
    TaskKind,
    UnknownModelError,
    UnknownTaskError,
    classify_task,
    get_model,
)

ALL_ROUTES = [*(k.value for k in TaskKind), SUMMARISE]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router()


def test_every_kind_has_a_route_that_fits_its_model(router: Router) -> None:
    assert set(router.routes()) == set(ALL_ROUTES)
    for name in ALL_ROUTES:
        route = router.route(name)
        profile = get_model(route.model)
        assert route.task == name
        assert 0 < route.max_tokens <= profile.max_output_tokens
        assert not route.thinking or profile.supports_thinking
        assert route.reason


@pytest.mark.parametrize(
    ("kind", "low", "high"),
    [
        ("extract", 0.0, 0.0),
        ("classify", 0.0, 0.0),
        ("chat", 0.2, 0.4),
        ("rag", 0.2, 0.4),
        ("summarize", 0.2, 0.4),
        ("code", 0.2, 0.4),
        ("review", 0.2, 0.4),
        ("reason", 0.2, 0.4),
        ("creative", 0.7, 1.5),
    ],
)
def test_temperature_bands(router: Router, kind: str, low: float, high: float) -> None:
    assert low <= router.route(kind).temperature <= high


def test_thinking_policy(router: Router) -> None:
    assert router.route(TaskKind.REASON).thinking
    assert router.route(TaskKind.REVIEW).thinking
    for kind in ("extract", "classify", "summarize", SUMMARISE, "chat"):
        assert not router.route(kind).thinking


def test_model_choices(router: Router) -> None:
    cheap = {"qwen-flash", "qwen-turbo"}
    for kind in ("classify", "extract", "summarize", SUMMARISE):
        assert router.route(kind).model in cheap
    assert router.route("chat").model == router.route("rag").model == "qwen-plus"
    assert router.route("reason").model == router.route("review").model == "qwen3-max"
    assert router.route("code").model.startswith("qwen3-coder")
    assert "image" in get_model(router.route("vision").model).modalities
    assert "audio" in get_model(router.route("audio").model).modalities


def test_summarise_route_is_cheaper_than_chat(router: Router) -> None:
    cheap = get_model(router.route(SUMMARISE).model).tier_for(1000, "ap-southeast-1")
    chat = get_model(router.route("chat").model).tier_for(1000, "ap-southeast-1")
    assert cheap.input < chat.input
    assert cheap.output < chat.output


def test_route_accepts_enum_and_names(router: Router) -> None:
    assert router.route(TaskKind.CODE) == router.route("code") == router.route(" Code ")


def test_unknown_kind_lists_valid_kinds(router: Router) -> None:
    with pytest.raises(UnknownTaskError, match="unknown task kind 'translate'; valid kinds: ") as e:
        router.route("translate")
    assert all(kind in str(e.value) for kind in ALL_ROUTES)


@pytest.mark.parametrize(
    ("text", "kind", "word"),
    [
        ("summarise this contract", "summarize", "summarise"),
        ("Summarize the meeting notes", "summarize", "Summarize"),
        ("tl;dr please", "summarize", "tl;dr"),
        ("classify these support tickets", "classify", "classify"),
        ("categorise the expenses", "classify", "categorise"),
        ("label each review as positive or negative", "classify", "label"),
        ("summarize the customer reviews", "summarize", "summarize"),
        ("review this python function", "review", "review"),
        ("extract the invoice totals as JSON", "extract", "extract"),
        ("pull out every date in the email", "extract", "pull out"),
        ("write a python function to merge intervals", "code", "python"),
        ("fix this bug", "code", "bug"),
        ("refactor the payment module", "code", "refactor"),
        ("what is in this screenshot", "vision", "screenshot"),
        ("extract the text from this photo", "vision", "photo"),
        ("transcribe the audio", "audio", "transcribe"),
        ("write a poem about autumn", "creative", "poem"),
        ("a slogan for a coffee shop", "creative", "slogan"),
        ("prove that sqrt 2 is irrational", "reason", "prove"),
        ("solve it step by step", "reason", "step by step"),
        ("review this pull request", "review", "review"),
        ("answer questions from our knowledge base", "rag", "knowledge base"),
        ("search the documents for the refund policy", "rag", "documents"),
        ("hi, how are you?", "chat", None),
        ("barcode scanner opinions", "chat", None),
    ],
)
def test_route_text(router: Router, text: str, kind: str, word: str | None) -> None:
    assert classify_task(text) == (TaskKind(kind), word)
    route = router.route_text(text)
    assert route.task == kind
    assert route.model == router.route(kind).model
    if word is None:
        assert route.reason.startswith("no keyword matched, so chat.")
    else:
        assert route.reason.startswith(f"keyword {word!r} matched the {kind} rule.")


def test_mapping_overrides(router: Router) -> None:
    custom = Router(overrides={"code": {"model": "qwen3-coder-flash", "temperature": 0.1}})
    code = custom.route("code")
    assert (code.model, code.temperature) == ("qwen3-coder-flash", 0.1)
    assert code.max_tokens == router.route("code").max_tokens
    assert code.reason.startswith(
        "Configured override (model='qwen3-coder-flash', temperature=0.1)"
    )
    assert custom.route("chat") == router.route("chat")


def test_overrides_are_clamped_to_the_model() -> None:
    custom = Router(
        overrides={
            "routes": {
                "code": {"max_tokens": 10**6},
                "reason": {"model": "qwen-max", "reason": "cheaper"},
                "extract": {"model": "qwq-plus"},
            }
        }
    )
    assert custom.route("code").max_tokens == 65_536
    assert "max_tokens clamped from 1000000" in custom.route("code").reason
    reason = custom.route("reason")
    assert (reason.thinking, reason.max_tokens) == (False, 8_192)
    assert reason.reason.startswith("cheaper (")
    assert "thinking off: qwen-max does not think" in reason.reason
    assert custom.route("extract").thinking  # qwq-plus always thinks


def test_overrides_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text('[routes.creative]\ntemperature = 1.1\nmodel = "qwen3.5-plus"\n')
    creative = Router(overrides=path).route("creative")
    assert (creative.temperature, creative.model) == (1.1, "qwen3.5-plus")
    assert Router(overrides=str(path)).route("creative") == creative


def test_bad_overrides_are_rejected() -> None:
    with pytest.raises(UnknownTaskError, match=r"unknown task kinds \['translate'\]"):
        Router(overrides={"translate": {"model": "qwen-plus"}})
    with pytest.raises(CatalogDataError, match="temprature"):
        Router(overrides={"chat": {"temprature": 0.3}})
    with pytest.raises(CatalogDataError, match="temperature"):
        Router(overrides={"chat": {"temperature": 3.0}})
    with pytest.raises(UnknownModelError, match="qwen-plsu"):
        Router(overrides={"chat": {"model": "qwen-plsu"}})
