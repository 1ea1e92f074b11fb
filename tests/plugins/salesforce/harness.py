"""What tests/plugins/test_contract.py needs to run the shared contract suite against Salesforce."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pytest_httpserver import HTTPServer

from core.plugins.contract import ActivityEvent, InboundRequest
from plugins.salesforce import SalesforcePlugin
from tests.fakes import salesforce as fake


def make_plugin(server: HTTPServer) -> tuple[SalesforcePlugin, Any]:
    """A plugin on a fake org holding 5 contacts and one campaign of 2 of them."""
    org = fake.FakeOrg().attach(server)
    ids = org.add_people("Contact", 5)
    org.add_campaign(1, "Spring", ids[:2], tick=100)
    return SalesforcePlugin(fake.settings(), fake.local_session(server)), org


def events() -> list[ActivityEvent]:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return [ActivityEvent(id=f"msg-{n}-delivered", kind="delivered", record_id=fake.sf_id("003", n), at=at,
                          text="Hi", status="delivered", campaign="Spring") for n in range(3)]


def garbage_trigger() -> InboundRequest:
    return InboundRequest("POST", "/x", {"content-type": "application/json"}, b"{not json")
