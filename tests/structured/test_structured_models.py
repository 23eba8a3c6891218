"""``partial_model`` and ``partial_instances``: Pydantic instances of a JSON object as it streams."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import itertools
import json
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any, Literal

import pytest
from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from qwenkit.structured import (
    JSONParseError,
    apartial_instances,
    is_more_complete,
    partial_instances,
    partial_model,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Item(BaseModel):
    name: str
    qty: int = Field(gt=0)


class Cat(BaseModel):
    kind: Literal["cat"]
    meows: int


class Dog(BaseModel):
    kind: Literal["dog"]
    barks: int


class Order(BaseModel):
    id: int
    items: list[Item]
    by_sku: dict[str, Item] = {}
    note: str | None = None
    color: Color
    when: dt.date
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]
    shape: tuple[int, int] = (0, 0)

    @model_validator(mode="after")
    def _needs_items(self) -> Order:
        if not self.items:
            raise ValueError("an order needs items")
        return self


class Node(BaseModel):
    label: str
    children: list[Node] = []


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=AliasGenerator(validation_alias=to_camel))
    first_name: str
    last_seen: int | None = None


ORDER = {
    "id": 7,
    "items": [{"name": "apple", "qty": 3}, {"name": "pear", "qty": 1}],
    "by_sku": {"A1": {"name": "apple", "qty": 3}},
    "note": "leave at the door",
    "color": "green",
    "when": "2025-01-31",
    "pet": {"kind": "dog", "barks": 2},
    "shape": [2, 3],
}


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_the_twin_has_every_field_optional_recursively_and_is_cached() -> None:
    twin = partial_model(Order)
    assert twin is partial_model(Order)
    assert twin.__name__ == "PartialOrder"
    assert not issubclass(twin, Order)
    empty = twin()
    assert all(getattr(empty, name) is None for name in Order.model_fields)
    item: Any = twin.model_validate({"items": [{}], "by_sku": {"x": {"name": "a"}}, "pet": {}})
    assert type(item.items[0]) is partial_model(Item)
    assert item.by_sku["x"].qty is None


def test_constraints_still_apply_to_partials() -> None:
    with pytest.raises(ValidationError):
        partial_model(Item).model_validate({"qty": 0})


def test_recursive_models_get_a_recursive_twin() -> None:
    twin = partial_model(Node)
    value: Any = twin.model_validate({"children": [{"children": [{"label": "leaf"}]}]})
    assert value.children[0].children[0].label == "leaf"
    assert type(value.children[0]) is twin


def test_aliases_and_config_carry_over() -> None:
    [*partials, final] = partial_instances(Camel, chunks('{"firstName": "Ada", "lastSeen": 5}', 4))
    assert final == Camel.model_validate({"firstName": "Ada", "lastSeen": 5})
    assert partials[-1].first_name == "Ada"  # type: ignore[attr-defined]


def test_partial_instances_grow_then_end_with_a_validated_model() -> None:
    items = list(partial_instances(Order, chunks(json.dumps(ORDER), 5)))
    *partials, final = items
    assert type(final) is Order
    assert final == Order.model_validate(ORDER)
    assert final.when == dt.date(2025, 1, 31)
    assert all(type(item) is partial_model(Order) for item in partials)
    shapes = [item.model_dump(mode="json", exclude_unset=True) for item in partials]
    assert shapes[0] == {}
    assert all(is_more_complete(a, b) for a, b in itertools.pairwise(shapes))
    assert shapes[-1] == json.loads(json.dumps(ORDER))
    notes = [s["note"] for s in shapes if "note" in s]
    assert len(notes) > 2  # the string was shown as it streamed


def test_a_field_that_cannot_validate_half_written_does_not_block_the_others() -> None:
    text = '{"color": "green", "id": 12}'
    shapes = [
        item.model_dump(mode="json", exclude_unset=True)
        for item in partial_instances(partial_model(Order), chunks(text, 2))
    ]
    assert {"color": "green"} in shapes  # "gr" is no Color: held back, not yielded as garbage
    assert all(s.get("color") in (None, "green") for s in shapes)
    assert shapes[-1] == {"color": "green", "id": 12}


def test_the_models_own_validators_run_only_on_the_final_instance() -> None:
    class Shout(BaseModel):
        title: str
        words: list[str]

        @field_validator("title")
        @classmethod
        def _title(cls, value: str) -> str:
            if not value.endswith("!"):
                raise ValueError("a title ends with '!'")
            return value.upper()

    text = json.dumps({"title": "Hi there!", "words": ["a", "b"]})
    *partials, final = partial_instances(Shout, chunks(text, 3))
    titles = [p.title for p in partials if p.title]  # type: ignore[attr-defined]
    assert "Hi there" in titles[-2]
    assert titles[-1] == "Hi there!"
    assert final == Shout(title="Hi there!", words=["a", "b"])
    assert final.title == "HI THERE!"


def test_final_validation_error_is_pydantics() -> None:
    bad = dict(ORDER, items=[])
    seen: list[BaseModel] = []
    with pytest.raises(ValidationError, match="an order needs items"):
        seen.extend(partial_instances(Order, chunks(json.dumps(bad), 7)))
    assert seen  # the partials came first


def test_cut_stream_raises_json_parse_error() -> None:
    with pytest.raises(JSONParseError):
        list(partial_instances(Item, ['{"name": "a', "pple"]))


def test_fenced_json_mode_stream() -> None:
    pieces = ["Here:\n```json\n", '{"name": "kiwi",', ' "qty": 2}', "\n```\n"]
    *_, final = partial_instances(Item, pieces)
    assert final == Item(name="kiwi", qty=2)


async def _agen(pieces: Iterable[str]) -> AsyncIterator[str]:
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


def test_async_twin_yields_the_same() -> None:
    pieces = chunks(json.dumps(ORDER), 4)

    async def collect() -> list[Any]:
        return [item async for item in apartial_instances(Order, _agen(pieces))]

    got = asyncio.run(collect())
    assert got == list(partial_instances(Order, pieces))
    assert type(got[-1]) is Order
