"""Why the schema lint suggests flattening: under the emulator's "dropped nested argument" quirk
(Qwen forgetting inner fields of nested arguments), a nested tool keeps failing validation, while
its flattened form, as `flatten_suggestion` proposes it, works in the same agent run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from pydantic import BaseModel, Field
from starlette.applications import Starlette

from qwenkit import AsyncQwen
from qwenkit.agents import Toolbox, flatten_suggestion, lint_schema, tool
from qwenkit.agents.run import Agent
from qwenkit.emulator import EmulatorConfig, create_app

QUESTION = "Book a table at Lotus in Shanghai on Nanjing Road for 2 people"


class Address(BaseModel):
    city: str = Field(description="The city.")
    street: str = Field(description="The street.")


class Venue(BaseModel):
    name: str = Field(description="The restaurant.")
    address: Address = Field(description="Where it is.")


@tool
def book_nested(venue: Venue, people: int) -> str:
    """Book a table.

    Args:
        venue: The restaurant and its address.
        people: How many people.
    """
    return f"booked {venue.name} in {venue.address.city} for {people}"


@tool
def book_flat(
    venue_name: str, venue_address_city: str, venue_address_street: str, people: int
) -> str:
    """Book a table.

    Args:
        venue_name: The restaurant.
        venue_address_city: The city.
        venue_address_street: The street.
        people: How many people.
    """
    return f"booked {venue_name} in {venue_address_city} for {people}"


@asynccontextmanager
async def connect(app: Starlette) -> AsyncIterator[AsyncQwen]:
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(api_key="sk-agent", base_url="http://emulator", http_client=http) as client,
    ):
        yield client


def forgetful_model() -> Starlette:
    return create_app(EmulatorConfig.model_validate({"quirks": {"drop_nested_rate": 1.0}}))


def test_the_lint_flags_the_nested_tool_and_suggests_the_flat_one() -> None:
    rules = {finding.rule for finding in lint_schema(book_nested)}
    assert "nested-object" in rules
    assert not any(f.rule == "nested-object" for f in lint_schema(book_flat))
    flat = flatten_suggestion(book_nested.parameters)
    assert set(flat["properties"]) == set(book_flat.parameters["properties"])


@pytest.mark.anyio
async def test_nested_arguments_fail_and_flat_ones_work() -> None:
    async with connect(forgetful_model()) as client:
        nested = Agent(Toolbox([book_nested], lint=False), client=client, force_answer_after=2)
        broken = await nested.arun(QUESTION)
        assert broken.trace, "the model called the tool"
        assert not any(step.ok for step in broken.trace)  # an inner field went missing every time

        flat = Agent(Toolbox([book_flat]), client=client)
        done = await flat.arun(QUESTION)
        assert done.trace
        assert all(step.ok for step in done.trace)
        assert {step.round for step in done.trace} == {1}  # one tool round, then the answer
        assert "booked" in done.answer
