"""Installed plugins: the entry-point group `smsconnect.plugins`, read once and loaded by name.

Built-ins register through the same group (pyproject.toml), as singer_sdk's batch encoders do. A plugin
that fails to import, or whose `name` differs from its entry-point name, is listed as unavailable with
the reason; the app still starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from core.plugins.contract import CrmPlugin
from core.plugins.errors import PluginNotFound

log = logging.getLogger(__name__)

GROUP = "smsconnect.plugins"


@dataclass(frozen=True)
class Installed:
    name: str
    target: str  # "module:Class" from the entry point
    cls: type[CrmPlugin] | None
    error: str | None  # why it is unavailable

    @property
    def available(self) -> bool:
        return self.cls is not None


def _load(ep: EntryPoint) -> Installed:
    try:
        cls: Any = ep.load()
    except Exception as exc:  # noqa: BLE001 - any import failure makes the plugin unavailable, not the app
        log.warning("plugin %s cannot be loaded: %s", ep.name, exc)
        return Installed(ep.name, ep.value, None, f"{type(exc).__name__}: {exc}")
    if getattr(cls, "name", None) != ep.name:
        why = f"{ep.value}.name is {getattr(cls, 'name', None)!r}, not the entry-point name {ep.name!r}"
        return Installed(ep.name, ep.value, None, why)
    missing = [m for m in ("check", "sync_contacts", "sync_segments", "parse_trigger", "write_back",
                           "settings_schema") if not hasattr(cls, m)]
    if missing:
        return Installed(ep.name, ep.value, None, f"{ep.value} lacks {', '.join(missing)}")
    return Installed(ep.name, ep.value, cls, None)


@cache
def installed() -> dict[str, Installed]:
    """Every plugin in the entry-point group, by name (read once per process)."""
    return {ep.name: _load(ep) for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)}


def get(name: str) -> type[CrmPlugin]:
    """The plugin class for `name`; PluginNotFound names the reason when it is unknown or unavailable."""
    found = installed().get(name)
    if found is None:
        known = ", ".join(sorted(installed())) or "none"
        raise PluginNotFound(f"no plugin named {name!r} (installed: {known})")
    if found.cls is None:
        raise PluginNotFound(f"plugin {name!r} is unavailable: {found.error}")
    return found.cls


def secret_fields(name: str) -> frozenset[str]:
    """Settings fields the plugin marks secret (stored encrypted, masked on the way out)."""
    schema = get(name).settings_schema()
    return frozenset(f.data_key or key for key, f in schema.fields.items() if f.metadata.get("secret"))
