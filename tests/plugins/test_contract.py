"""The contract suite every registered plugin runs (STYLE.md section 3), as singer_sdk's get_tap_test_class.

A plugin provides `tests/plugins/<name>/harness.py` with make_plugin(httpserver), events() and
garbage_trigger().
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest
from marshmallow import Schema
from pytest_httpserver import HTTPServer

from core.plugins import registry
from core.plugins.contract import ContactRecord, CrmPlugin, Page, Problem, SegmentRecord, WriteResult
from core.plugins.errors import TriggerRefused

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(registry.installed())


def harness(name: str) -> ModuleType:
    return importlib.import_module(f"tests.plugins.{name}.harness")


def test_every_plugin_loads() -> None:
    broken = {n: i.error for n, i in registry.installed().items() if not i.available}
    assert not broken


def test_entry_points_match_the_plugin_folders() -> None:
    folders = {p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists()}
    assert set(NAMES) == folders
    for name in NAMES:
        assert registry.installed()[name].target.startswith(f"plugins.{name}:")


@pytest.mark.parametrize("name", NAMES)
def test_declares_name_and_settings(name: str) -> None:
    cls = registry.get(name)
    assert cls.name == name
    assert issubclass(cls.settings_schema, Schema)
    for method in ("check", "sync_contacts", "sync_segments", "parse_trigger", "write_back"):
        assert callable(getattr(cls, method))
    assert list(inspect.signature(cls.__init__).parameters)[1:3] == ["settings", "http"]


@pytest.mark.parametrize("name", NAMES)
def test_is_a_pure_adapter(name: str) -> None:
    """No Flask, database, queue or environment inside a plugin."""
    for path in (ROOT / "plugins" / name).rglob("*.py"):
        source = path.read_text()
        for banned in (r"^\s*(from|import) (flask|sqlalchemy|rq|redis|connector)\b", r"os\.environ", r"getenv"):
            assert not re.search(banned, source, re.M), f"{path.name} matches {banned}"


@pytest.mark.parametrize("name", NAMES)
def test_check_returns_problems(name: str, httpserver: HTTPServer) -> None:
    plugin, _ = harness(name).make_plugin(httpserver)
    assert isinstance(plugin, CrmPlugin)
    problems = plugin.check()
    assert isinstance(problems, list) and all(isinstance(p, Problem) for p in problems)
    assert not [p for p in problems if p.fatal]


@pytest.mark.parametrize("name", NAMES)
def test_sync_pages_resume_from_their_cursor(name: str, httpserver: HTTPServer) -> None:
    plugin, _ = harness(name).make_plugin(httpserver)
    for method, kind in ((plugin.sync_contacts, ContactRecord), (plugin.sync_segments, SegmentRecord)):
        pages = list(method(None))
        assert pages and all(isinstance(p, Page) for p in pages)
        assert all(isinstance(r, kind) for p in pages for r in p.records)
        assert all(isinstance(p.cursor, str) for p in pages)
        again = list(method(pages[-1].cursor))
        assert [r for p in again for r in p.records] == []


@pytest.mark.parametrize("name", NAMES)
def test_write_back_answers_once_per_event_in_order(name: str, httpserver: HTTPServer) -> None:
    plugin, _ = harness(name).make_plugin(httpserver)
    events = harness(name).events()
    results = plugin.write_back(events)
    assert all(isinstance(r, WriteResult) for r in results)
    assert [r.event_id for r in results] == [e.id for e in events]
    assert plugin.write_back([]) == []


@pytest.mark.parametrize("name", NAMES)
def test_garbage_trigger_is_refused_not_crashed(name: str, httpserver: HTTPServer) -> None:
    plugin, _ = harness(name).make_plugin(httpserver)
    with pytest.raises(TriggerRefused):
        plugin.parse_trigger(harness(name).garbage_trigger())
