"""Events as Tasks through sObject Collections, up to 200 per call, idempotent.

With the package installed, each Task is upserted on the external-id field `SMS_Event_Id__c` (one
`PATCH composite/sobjects/Task/SMS_Event_Id__c` per 200 events). Without it (`task_id_field` empty), our id
goes in `Task.CallObject`, and a query for the ids already there precedes one `POST composite/sobjects` of
the rest. Opt-outs also tick the record's opt-out field when one is configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.plugins.contract import ActivityEvent, WriteResult
from plugins.salesforce.client import Client

BATCH = 200  # sObject Collections take at most 200 records per request
SUBJECTS = {"delivered": "SMS delivered", "failed": "SMS failed", "clicked": "SMS link clicked",
            "replied": "SMS reply", "opted_out": "SMS opt-out"}
LOOKUP_FIELD = "CallObject"
PREFIXES = {"003": "Contact", "00Q": "Lead"}


def task(event: ActivityEvent, id_field: str) -> dict[str, Any]:
    """The Task of one event; `id_field` carries our idempotency key."""
    subject = SUBJECTS.get(event.kind, f"SMS {event.kind}")
    if event.campaign:
        subject = f"{subject}: {event.campaign}"
    lines = [event.text, "", f"Status: {event.status or event.kind}"]
    if event.detail:
        lines.append(f"Detail: {event.detail}")
    return {"attributes": {"type": "Task"}, id_field: event.id, "Subject": subject[:255], "WhoId": event.record_id,
            "Status": "Completed", "Priority": "Normal", "ActivityDate": event.at.date().isoformat(),
            "Description": "\n".join(lines)[:32000]}


def _errors(item: Mapping[str, Any]) -> str:
    return "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in item.get("errors") or []) or "failed"


def _results(events: Sequence[ActivityEvent], answer: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
    """Salesforce answers in request order, one item per record."""
    return [WriteResult(e.id, True, None, item.get("id")) if item.get("success")
            else WriteResult(e.id, False, _errors(item)) for e, item in zip(events, answer, strict=True)]


def upsert(client: Client, events: Sequence[ActivityEvent], id_field: str) -> list[WriteResult]:
    body = {"allOrNone": False, "records": [task(e, id_field) for e in events]}
    answer = client.call(lambda sf: sf.restful(f"composite/sobjects/Task/{id_field}", method="PATCH", json=body))
    return _results(events, answer or [])


def lookup_then_create(client: Client, events: Sequence[ActivityEvent]) -> list[WriteResult]:
    keys = ", ".join("'" + e.id.replace("\\", "\\\\").replace("'", "\\'") + "'" for e in events)
    found = {r[LOOKUP_FIELD]: r["Id"] for page in client.pages(
        f"SELECT Id, {LOOKUP_FIELD} FROM Task WHERE {LOOKUP_FIELD} IN ({keys})") for r in page}
    todo = [e for e in events if e.id not in found]
    created: dict[str, WriteResult] = {}
    if todo:
        body = {"allOrNone": False, "records": [task(e, LOOKUP_FIELD) for e in todo]}
        answer = client.call(lambda sf: sf.restful("composite/sobjects", method="POST", json=body))
        created = {r.event_id: r for r in _results(todo, answer or [])}
    return [created.get(e.id) or WriteResult(e.id, True, None, found.get(e.id)) for e in events]


def mark_opted_out(client: Client, events: Sequence[ActivityEvent], field: str) -> dict[str, str]:
    """Ticks the opt-out field of each opted-out record; returns event id → error for the failures."""
    targets = [e for e in events if e.kind == "opted_out" and e.record_id[:3] in PREFIXES]
    if not targets:
        return {}
    body = {"allOrNone": False, "records": [{"attributes": {"type": PREFIXES[e.record_id[:3]]}, "id": e.record_id,
                                             field: True} for e in targets]}
    answer = client.call(lambda sf: sf.restful("composite/sobjects", method="PATCH", json=body)) or []
    return {e.id: _errors(item) for e, item in zip(targets, answer, strict=True) if not item.get("success")}


def write(client: Client, settings: Mapping[str, Any], events: Sequence[ActivityEvent]) -> list[WriteResult]:
    out: list[WriteResult] = []
    id_field = settings.get("task_id_field")
    for start in range(0, len(events), BATCH):
        chunk = events[start:start + BATCH]
        results = upsert(client, chunk, id_field) if id_field else lookup_then_create(client, chunk)
        if settings.get("opt_out_field"):
            failed = mark_opted_out(client, chunk, settings["opt_out_field"])
            results = [WriteResult(r.event_id, False, f"opt-out field not updated: {failed[r.event_id]}")
                       if r.event_id in failed else r for r in results]
        out.extend(results)
    return out
