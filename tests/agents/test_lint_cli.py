"""``qwenkit lint tools`` and ``qwenkit lint prompt`` (the typer sub-app, through CliRunner)."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qwenkit.cli._lint import app

runner = CliRunner()

TOOLS = '''
from pydantic import BaseModel, Field
from qwenkit.agents import Toolbox, tool


class Location(BaseModel):
    city: str = Field(description="City name")
    country: str = Field("CN", description="Country code")


def get_weather(location: Location) -> str:
    """Get the weather.

    Args:
        location: Where.
    """
    return location.city


@tool
def clean(city: str) -> str:
    """Look up a city.

    Args:
        city: City name.
    """
    return city


box = Toolbox([get_weather, clean], lint=False)
free = {"type": "object", "additionalProperties": True}
both = [clean, {"type": "function", "function": {"name": "raw", "parameters": free}}]
not_a_tool = 42
'''


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a module into a fresh cwd; return its (unique) name."""
    monkeypatch.chdir(tmp_path)
    names: list[str] = []

    def write(source: str) -> str:
        name = f"lint_target_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def test_clean_tool_exits_zero(module: Callable[[str], str]) -> None:
    name = module(TOOLS)
    result = runner.invoke(app, ["tools", f"{name}:clean", "--strict"])
    assert result.exit_code == 0, result.output
    assert "1 tool(s), no findings" in result.output
    assert str(Path.cwd()) not in sys.path[:1]


def test_findings_are_warnings_unless_strict(module: Callable[[str], str]) -> None:
    name = module(TOOLS)
    result = runner.invoke(app, ["tools", f"{name}:box"])
    assert result.exit_code == 0, result.output
    assert "nested-object" in result.output
    assert "location_city" in result.output  # the flattened form is shown
    strict = runner.invoke(app, ["tools", f"{name}:box", "--strict"])
    assert strict.exit_code == 1


def test_json_output(module: Callable[[str], str]) -> None:
    name = module(TOOLS)
    result = runner.invoke(app, ["tools", f"{name}:box", "--json", "--strict"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["tools"] == ["get_weather", "clean"]
    assert [(f["rule"], f["path"], f["severity"]) for f in data["findings"]] == [
        ("nested-object", "location", "error")
    ]
    assert data["flattened"]["get_weather"]["required"] == ["location_city"]
    assert set(data["flattened"]["get_weather"]["properties"]) == {
        "location_city",
        "location_country",
    }


def test_list_of_tools_and_dicts_and_a_plain_function(module: Callable[[str], str]) -> None:
    name = module(TOOLS)
    result = runner.invoke(app, ["tools", f"{name}:both", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["tools"] == ["clean", "raw"]
    assert {f["rule"] for f in data["findings"]} == {"missing-description", "free-form-object"}
    plain = runner.invoke(app, ["tools", f"{name}:get_weather", "--json"])
    assert json.loads(plain.output)["tools"] == ["get_weather"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", "expected MODULE:OBJECT"),
        ("{name}:missing", "has no attribute 'missing'"),
        ("{name}:not_a_tool", "not a tool"),
        ("surely_not_a_module_xyz:obj", "ModuleNotFoundError"),
    ],
)
def test_targets_that_cannot_be_loaded_exit_two(
    module: Callable[[str], str], target: str, message: str
) -> None:
    name = module(TOOLS)
    result = runner.invoke(app, ["tools", target.format(name=name)])
    assert result.exit_code == 2
    assert message in result.stderr


def test_lint_prompt_file(tmp_path: Path) -> None:
    path = tmp_path / "system.txt"
    path.write_text("You are helpful.\nToday is 2026-11-22.\n", encoding="utf-8")
    result = runner.invoke(app, ["prompt", str(path)])
    assert result.exit_code == 0, result.output
    assert "2:10" in result.output
    assert "end of the messages" in result.output
    assert runner.invoke(app, ["prompt", str(path), "--strict"]).exit_code == 1
    data = json.loads(runner.invoke(app, ["prompt", str(path), "--json"]).output)
    assert [(f["rule"], f["line"], f["column"]) for f in data["findings"]] == [("date", 2, 10)]


def test_lint_prompt_stdin_ignore_and_clean() -> None:
    result = runner.invoke(app, ["prompt", "-", "--strict"], input="Be brief. Version 2.0.\n")
    assert result.exit_code == 0
    assert "no dynamic content" in result.output
    text = "Hours 09:00-18:00."
    assert runner.invoke(app, ["prompt", "-", "--strict"], input=text).exit_code == 1
    ignored = runner.invoke(app, ["prompt", "-", "--strict", "--ignore", "time"], input=text)
    assert ignored.exit_code == 0


def test_lint_prompt_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prompt", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
