from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from core import db, delivery
from core.delivery import DeliveryReport
from core.models import Message, ProviderAccount, Workspace
from core.runtime import Runtime
from tests.factories import make_contact, make_workspace
from tests.webhooks import contact_status, events, make_account, make_message, message, statuses


def _report(ref: str, status: str, provider_status: str | None = None, code: str | None = None,
            key: str | None = None) -> DeliveryReport:
    return DeliveryReport(ref, key, status, provider_status or status, code, datetime(2024, 6, 6, 8, 17, tzinfo=UTC))


def _apply(rt: Runtime, account: ProviderAccount, *reports: DeliveryReport) -> delivery.Applied:
    with db.transaction(rt.sessions) as session:
        return delivery.apply_reports(session, account, list(reports))


@pytest.fixture
def account(rt: Runtime) -> ProviderAccount:
    ws = make_workspace(rt)
    return make_account(rt, ws.id, "sinch", {"service_plan_id": "p", "api_token": "t"})


def test_a_late_sent_after_delivered_stays_delivered(rt: Runtime, account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, provider_message_id="b1")
    _apply(rt, account, _report("b1", "delivered"))
    applied = _apply(rt, account, _report("b1", "sent", "Dispatched"))
    assert statuses(rt, sms) == ["delivered"] and applied.unchanged == 1
    assert events(rt, sms.id) == ["delivered"]


def test_duplicates_are_harmless(rt: Runtime, account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, provider_message_id="b1")
    first = _apply(rt, account, _report("b1", "delivered"), _report("b1", "delivered"))
    again = _apply(rt, account, _report("b1", "delivered"))
    assert (first.applied, first.unchanged, again.applied) == (1, 1, 0)
    assert events(rt, sms.id) == ["delivered"]


def test_a_final_status_is_final(rt: Runtime, account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, provider_message_id="b1")
    _apply(rt, account, _report("b1", "expired", "Expired"), _report("b1", "delivered"))
    assert statuses(rt, sms) == ["expired"]
    assert message(rt, sms.id).reason == "sinch: Expired"


def test_waiting_moves_forward_through_sent_and_records_each_step(rt: Runtime, account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, status="waiting", key="m-1")
    _apply(rt, account, _report(None, "sent", key="m-1"), _report(None, "delivered", key="m-1"))  # type: ignore[arg-type]
    found = message(rt, sms.id)
    assert found.status == "delivered" and found.status_at is not None
    assert events(rt, sms.id) == ["sent", "delivered"]


def test_failures_store_reason_and_code(rt: Runtime, account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, provider_message_id="b1")
    _apply(rt, account, DeliveryReport("b1", None, "undelivered", "Aborted", "404", None, "absent subscriber"))
    found = message(rt, sms.id)
    assert (found.status, found.error_code, found.reason) == ("undelivered", "404",
                                                              "sinch: Aborted (404): absent subscriber")


def test_unknown_ids_and_other_workspaces_messages_are_counted_not_touched(rt: Runtime,
                                                                          account: ProviderAccount) -> None:
    other = make_workspace(rt, "Other")
    foreign = make_message(rt, other.id, provider_message_id="b9", key="m-9")
    applied = _apply(rt, account, _report("nope", "delivered"), _report("b9", "delivered"),
                     _report(None, "delivered", key="m-9"))  # type: ignore[arg-type]
    assert (applied.unknown, applied.applied) == (3, 0)
    assert statuses(rt, foreign) == ["sent"]


def test_a_report_ahead_of_the_send_result_finds_its_message_by_key(rt: Runtime, account: ProviderAccount) -> None:
    # The gateway's report can arrive before the worker has written the provider id it was given.
    sms = make_message(rt, account.workspace_id, status="waiting", key="m-7")
    other = make_message(rt, account.workspace_id, provider_message_id="b8")
    applied = _apply(rt, account, _report("b7", "delivered", key="m-7"), _report("b8", "undelivered", code="27"))
    assert (applied.applied, applied.unknown) == (2, 0)
    assert statuses(rt, sms, other) == ["delivered", "undelivered"]
    assert events(rt, sms.id) == ["delivered"] and events(rt, other.id) == ["undelivered"]


def test_another_gateways_message_with_the_same_id_is_not_touched(rt: Runtime, account: ProviderAccount) -> None:
    twilio = make_message(rt, account.workspace_id, provider="twilio", provider_message_id="b1")
    applied = _apply(rt, account, _report("b1", "delivered"))
    assert (applied.applied, applied.unknown) == (0, 1)
    assert statuses(rt, twilio) == ["sent"] and events(rt, twilio.id) == []


def test_a_permanent_error_archives_the_active_contact_only(rt: Runtime, account: ProviderAccount) -> None:
    ws_id = account.workspace_id
    with rt.sessions() as session:
        ws = session.get(Workspace, ws_id)
    active, blocked = make_contact(rt, ws, "+48600100201"), make_contact(rt, ws, "+48600100202", status="blocked")
    first = make_message(rt, ws_id, provider_message_id="b1", contact_id=active.id)
    second = make_message(rt, ws_id, provider_message_id="b2", contact_id=blocked.id)
    applied = _apply(rt, account, _report("b1", "error", "Rejected"), _report("b2", "error", "Failed"))
    assert applied.archived == 1
    assert (contact_status(rt, active.id), contact_status(rt, blocked.id)) == ("archived", "blocked")
    assert statuses(rt, first, second) == ["error", "error"]


def test_the_workspace_can_turn_auto_archive_off(rt: Runtime, account: ProviderAccount) -> None:
    with db.transaction(rt.sessions) as session:
        ws = session.get(Workspace, account.workspace_id)
        assert ws is not None
        ws.settings = {"auto_archive_errors": False}
    contact = make_contact(rt, ws, "+48600100203")
    make_message(rt, ws.id, provider_message_id="b1", contact_id=contact.id)
    assert _apply(rt, account, _report("b1", "error")).archived == 0
    assert contact_status(rt, contact.id) == "active"


def test_hundreds_of_reports_take_a_handful_of_statements(rt: Runtime, account: ProviderAccount) -> None:
    with db.transaction(rt.sessions) as session:
        session.add_all([Message(workspace_id=account.workspace_id, phone="+48600100200", text="x",
                                 idempotency_key=f"bulk-{i}", provider="sinch", provider_message_id=f"b{i}",
                                 status="sent") for i in range(600)])
    reports = [_report(f"b{i}", ("delivered", "undelivered", "expired")[i % 3], code=str(i % 3)) for i in range(600)]
    statements: list[str] = []

    def listen(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(rt.engine, "before_cursor_execute", listen)
    try:
        applied = _apply(rt, account, *reports)
    finally:
        event.remove(rt.engine, "before_cursor_execute", listen)
    assert applied.applied == 600
    # 2 UPDATE chunks joined on the provider id, 1 INSERT of events, the workspace and its CRM connections
    # (a SELECT before each UPDATE would make 7 or more)
    assert len(statements) <= 6, statements


@pytest.mark.parametrize("provider, theirs, code, ours", [
    ("sinch", "Queued", None, "sent"), ("sinch", "DISPATCHED", None, "sent"), ("sinch", "Delivered", None, "delivered"),
    ("sinch", "Expired", None, "expired"), ("sinch", "Rejected", None, "error"), ("sinch", "Failed", None, "error"),
    ("sinch", "Aborted", None, "undelivered"), ("sinch", "Unknown", None, "undelivered"),
    ("twilio", "queued", None, "sent"), ("twilio", "sent", None, "sent"), ("twilio", "delivered", None, "delivered"),
    ("twilio", "read", None, "delivered"), ("twilio", "undelivered", "30003", "undelivered"),
    ("twilio", "failed", "30005", "error"), ("twilio", "undelivered", "30006", "error"),
    ("twilio", "failed", "21211", "error"), ("twilio", "failed", "21614", "error"),
    ("twilio", "failed", "30007", "undelivered"), ("twilio", "received", None, None),
    ("cm", "0", None, "sent"), ("cm", "1", None, "error"), ("cm", "2", None, "delivered"),
    ("cm", "3", None, "undelivered"),
    ("simulator", "DELIVERED", None, "delivered"), ("simulator", "ERROR", None, "error"),
    ("generic", "DELIVRD", None, "delivered"), ("generic", "REJECTD", None, "error"),
    ("generic", "queued", None, "sent"),
])
def test_status_mapping(provider: str, theirs: str, code: str | None, ours: str | None) -> None:
    assert delivery.map_status(provider, theirs, code) == ours


def test_generic_custom_map_wins_and_must_name_our_statuses() -> None:
    assert delivery.map_status("generic", "OK", custom={"ok": "delivered"}) == "delivered"
    assert delivery.map_status("generic", "delivered", custom={"delivered": "error"}) == "error"
    assert delivery.map_status("generic", "OK", custom={"ok": "great"}) is None
