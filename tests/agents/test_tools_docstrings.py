"""Docstrings to descriptions: Google, NumPy and Sphinx styles, and their edge cases."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from qwenkit.agents import tool
from qwenkit.agents._signature import parse_docstring


def test_google_docstring_gives_summary_and_parameter_descriptions() -> None:
    @tool
    def forecast(city: str, days: int = 1) -> str:
        """Get the weather forecast
        for a city.

        Longer explanation that is not part of the description.

        Args:
            city (str): The city,
                in English or Chinese.
            days: Number of days ahead.

        Returns:
            The forecast as text.
        """
        return city

    assert forecast.description == "Get the weather forecast for a city."
    props = forecast.parameters["properties"]
    assert props["city"]["description"] == "The city, in English or Chinese."
    assert props["days"]["description"] == "Number of days ahead."


def test_numpy_docstring() -> None:
    @tool
    def forecast(city: str, days: int = 1, hourly: bool = False) -> str:
        """Get the weather forecast.

        Parameters
        ----------
        city : str
            The city.
        days, hourly : int, optional
            Forecast shape.

        Returns
        -------
        str
        """
        return city

    props = forecast.parameters["properties"]
    assert props["city"]["description"] == "The city."
    assert props["days"]["description"] == "Forecast shape."
    assert props["hourly"]["description"] == "Forecast shape."
    assert forecast.description == "Get the weather forecast."


def test_sphinx_docstring() -> None:
    @tool
    def forecast(city: str, days: int = 1) -> str:
        """Get the weather forecast.
        :param city: The city.
        :param int days: Number of days
            ahead.
        :returns: the forecast
        """
        return city

    assert forecast.description == "Get the weather forecast."
    props = forecast.parameters["properties"]
    assert props["city"]["description"] == "The city."
    assert props["days"]["description"] == "Number of days ahead."


def test_annotated_description_wins_over_the_docstring() -> None:
    @tool
    def f(city: Annotated[str, Field(description="from Field")]) -> str:
        """Tool.

        Args:
            city: from the docstring
        """
        return city

    assert f.parameters["properties"]["city"]["description"] == "from Field"


def test_parse_docstring_edge_cases() -> None:
    assert parse_docstring(None).summary is None
    assert parse_docstring("   ").params == {}
    doc = parse_docstring("Summary line.\nArgs:\n    x: The x.\n")
    assert doc.summary == "Summary line."
    assert doc.params == {"x": "The x."}
    assert parse_docstring("Args:\n    x: The x.").summary is None
