"""The Salesforce plugin: a thin class over settings, client, sync, triggers and write-back."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import requests
from marshmallow import Schema

from core.plugins.contract import (
    ActivityEvent,
    ContactRecord,
    InboundRequest,
    Page,
    Problem,
    SegmentRecord,
    TriggerResult,
    WriteResult,
)
from core.plugins.errors import AuthFailed, BadSettings, PermissionMissing, PluginError
from plugins.salesforce import sync, triggers, writeback
from plugins.salesforce.client import Client
from plugins.salesforce.settings import SalesforceSettings


class SalesforcePlugin:
    name: ClassVar[str] = "salesforce"
    settings_schema: ClassVar[type[Schema]] = SalesforceSettings

    def __init__(self, settings: Mapping[str, Any], http: requests.Session) -> None:
        self.settings = SalesforceSettings().load(dict(settings))
        self.client = Client(self.settings, http)

    @property
    def api_usage(self) -> dict[str, Any]:
        return self.client.api_usage

    def check(self) -> list[Problem]:
        """Logs in, reads the org's API limits and describes every object and field the settings name."""
        try:
            self.client.login()
            limits = self.client.call(lambda sf: sf.limits())
        except AuthFailed as exc:
            return [Problem("bad_credentials", str(exc))]
        except PermissionMissing as exc:
            return [Problem("missing_permission", str(exc))]
        except PluginError as exc:
            return [Problem("unavailable", str(exc))]
        problems: list[Problem] = []
        remaining = (limits or {}).get("DailyApiRequests", {}).get("Remaining")
        if remaining is not None and remaining < 1000:
            problems.append(Problem("low_api_quota", f"only {remaining} API calls left today", fatal=False))
        for obj in self.settings["objects"]:
            wanted = sync.person_fields(self.settings, obj)
            try:
                have = {f["name"] for f in self.client.call(lambda sf, o=obj: sf.restful(f"sobjects/{o}/describe"))
                        ["fields"]}
            except (BadSettings, PermissionMissing) as exc:
                problems.append(Problem("missing_permission", f"cannot read {obj}: {exc}"))
                continue
            missing = [f for f in wanted if f not in have]
            if missing:
                problems.append(Problem("missing_field", f"{obj} has no field {', '.join(missing)}"))
        return problems

    def sync_contacts(self, cursor: str | None) -> Iterator[Page[ContactRecord]]:
        return sync.contact_pages(self.client, self.settings, cursor)

    def sync_segments(self, cursor: str | None) -> Iterator[Page[SegmentRecord]]:
        return sync.segment_pages(self.client, self.settings, cursor)

    def parse_trigger(self, request: InboundRequest) -> TriggerResult:
        return triggers.parse(request, self.settings)

    def write_back(self, events: Sequence[ActivityEvent]) -> list[WriteResult]:
        return writeback.write(self.client, self.settings, events)
