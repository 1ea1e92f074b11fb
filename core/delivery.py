"""Delivery reports: each gateway's statuses mapped to ours, applied in bulk, never moving a message back.

Our statuses rank waiting < sent < final (delivered, undelivered, expired, error, enqueue_failed). A report
applies only when it ranks above the message's current status, so a final status is final, `sent` never
goes back to `waiting`, a late "sent" after "delivered" stays delivered, and a duplicate changes nothing.

=================  ====================================================  ==============
gateway            their status                                          ours
=================  ====================================================  ==============
Sinch              Queued, Dispatched                                    sent
                   Delivered                                             delivered
                   Expired                                               expired
                   Rejected, Failed                                      error
                   Aborted, Cancelled, Deleted, Unknown                  undelivered
Twilio             accepted, scheduled, queued, sending, sent            sent
                   delivered, read                                       delivered
                   failed or undelivered with ErrorCode 30005 (unknown   error
                   number), 30006 (landline), 21211 (invalid To),
                   21614 (not a mobile number)
                   failed, undelivered (any other code), canceled        undelivered
CM.com statuscode  0 accepted                                            sent
                   2 delivered                                           delivered
                   1 rejected                                            error
                   3 failed                                              undelivered
simulator          DELIVERED / UNDELIVERED / EXPIRED / ERROR             same, lowercase
generic            the account's `status_map` first; then our own names, and SMPP-style words:
                   accepted/acceptd/queued/enroute/submitted → sent, delivrd → delivered,
                   undeliv/failed/deleted → undelivered, rejected/rejectd/invalid → error
=================  ====================================================  ==============

Comparisons are case-insensitive. A status not in the table is dropped by the parser (and logged).
After a report moves a message to `error` (a permanent number problem), its contact is archived when the
workspace setting `auto_archive_errors` is on (the default), so later audiences exclude it. Final statuses
are noted in the plugin outbox (core/plugins/outbox.py) for CRM write-back, in the same transaction.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from core import bulk, db
from core.models import Contact, Message, MessageEvent, ProviderAccount, Workspace
from core.models.base import utcnow
from core.models.messages import FINAL_STATUSES
from core.plugins import outbox

log = logging.getLogger(__name__)

RANK = {"waiting": 0, "sent": 1, **{status: 2 for status in FINAL_STATUSES}}
FAILED = frozenset({"undelivered", "expired", "error"})  # statuses that carry a reason and an error code
CHUNK = 500  # ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits

SINCH = {"queued": "sent", "dispatched": "sent", "delivered": "delivered", "expired": "expired",
         "rejected": "error", "failed": "error", "aborted": "undelivered", "cancelled": "undelivered",
         "deleted": "undelivered", "unknown": "undelivered"}
TWILIO = {"accepted": "sent", "scheduled": "sent", "queued": "sent", "sending": "sent", "sent": "sent",
          "delivered": "delivered", "read": "delivered", "failed": "undelivered", "undelivered": "undelivered",
          "canceled": "undelivered"}
TWILIO_PERMANENT = frozenset({"30005", "30006", "21211", "21614"})
CM = {"0": "sent", "1": "error", "2": "delivered", "3": "undelivered"}
SIMULATOR = {"delivered": "delivered", "undelivered": "undelivered", "expired": "expired", "error": "error"}
GENERIC = {**{status: status for status in RANK}, "accepted": "sent", "acceptd": "sent", "queued": "sent",
           "enroute": "sent", "submitted": "sent", "delivrd": "delivered", "undeliv": "undelivered",
           "failed": "undelivered", "deleted": "undelivered", "rejected": "error", "rejectd": "error",
           "invalid": "error"}
_TABLES = {"sinch": SINCH, "cm": CM, "simulator": SIMULATOR}


def map_status(provider: str, status: Any, error_code: Any = None,
               custom: dict[str, str] | None = None) -> str | None:
    """Our status for a gateway's status (see the module table), or None when it has no meaning for us."""
    theirs = str(status or "").strip().lower()
    if provider == "twilio":
        ours = TWILIO.get(theirs)
        if theirs in ("failed", "undelivered") and str(error_code or "") in TWILIO_PERMANENT:
            return "error"
        return ours
    if provider == "generic":
        lowered = {key.lower(): value for key, value in (custom or {}).items()}
        ours = lowered.get(theirs) or GENERIC.get(theirs)
        return ours if ours in RANK else None
    return _TABLES.get(provider, {}).get(theirs)


class DeliveryReport(NamedTuple):  # a tuple: a webhook call parses hundreds (a frozen dataclass costs 3x)
    provider_message_id: str | None
    key: str | None  # our idempotency key, for gateways that echo a client reference
    status: str  # ours
    provider_status: str | None
    error_code: str | None
    at: datetime | None  # when the gateway says it happened
    detail: str | None = None  # the gateway's error text, when it gives one


@dataclass(frozen=True, slots=True)
class Applied:
    received: int
    applied: int  # reports that changed a message
    unchanged: int  # duplicates, late or out-of-order reports
    unknown: int  # reports naming no message of this account's workspace
    archived: int  # contacts archived after a permanent error


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    items = list(values)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


_M = Message.__table__.c
_FOUND = select(_M.id, _M.status, _M.contact_id, _M.provider_message_id, _M.idempotency_key, _M.workspace_id,
                _M.provider)
_BY_PROVIDER_ID = _FOUND.where(_M.provider_message_id.in_(bindparam("ids", expanding=True)))  # built once
_BY_KEY = _FOUND.where(_M.idempotency_key.in_(bindparam("keys", expanding=True)))


def _find(session: Session, account: ProviderAccount,
          reports: Sequence[DeliveryReport]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The account's workspace's messages that the reports name, by provider id and by key (bulk SELECTs).

    The workspace and provider are checked on the rows found, not in the WHERE clause: given `workspace_id = ?`
    there, SQLite chose the (workspace_id, created_at) index and read every message of the workspace for each
    batch, and PostgreSQL, given `provider = ?`, filtered every message of the provider.
    """
    ws_id, provider = account.workspace_id, account.provider
    conn = session.connection()
    by_id: dict[str, Any] = {}
    by_key: dict[str, Any] = {}
    for chunk in _chunks({r.provider_message_id for r in reports if r.provider_message_id}):
        by_id.update({row.provider_message_id: row for row in conn.execute(_BY_PROVIDER_ID, {"ids": chunk}).all()
                      if row.workspace_id == ws_id and row.provider == provider})
    # A key is looked up only for reports whose provider id found nothing (most gateways send just one).
    keys = {r.key for r in reports if r.key and (r.provider_message_id or "") not in by_id}
    for chunk in _chunks(keys):
        by_key.update({row.idempotency_key: row for row in conn.execute(_BY_KEY, {"keys": chunk}).all()
                       if row.workspace_id == ws_id})
    return by_id, by_key


def reason(provider: str, report: DeliveryReport) -> str:
    """The human reason stored on a failed message, e.g. `twilio: undelivered (30003)`."""
    text = f"{provider}: {report.provider_status or report.status}"
    if report.error_code not in (None, "", "0"):
        text += f" ({report.error_code})"
    return f"{text}: {report.detail}" if report.detail else text


def apply_reports(session: Session, account: ProviderAccount, reports: Sequence[DeliveryReport]) -> Applied:
    """Applies reports to the account's workspace's messages. The UPDATEs re-check the rank, so concurrent reports
    cannot move a message back either. Unknown ids are logged and counted, never an error (the gateway must
    stop retrying).

    On SQLite the usual batch, one report per provider id, is one UPDATE .. FROM (core/bulk.py) joined on the
    provider id (`_apply_by_provider_id`). What it leaves (reports naming no id or the same id twice, reports that
    raced ahead of the send's result, duplicates, unknown ids), and every batch on PostgreSQL, goes through
    `_find`: one SELECT per 500 ids or keys, then one UPDATE by primary key. Then one INSERT of events. What can be
    read or built beforehand is, since on SQLite the first UPDATE takes the database's write lock until the request
    commits.

    PostgreSQL does not get the joined UPDATE: its `provider = ?` and `workspace_id = ?` terms let the planner start
    from them, and right after Processing the statistics say that no message has a provider yet (every new one is
    NULL until sent; `processing.finish` ANALYZEs a large campaign's messages then). It then compared every message
    of the table with every report of the batch: 2.26 s for 500 reports in the bench's first campaign
    (auto_explain: a nested loop over a sequential scan, 9,749,500 rows removed by the join filter).
    """
    session.get(Workspace, account.workspace_id)  # for archive_contacts, read before the lock
    connections = outbox.active_connections(session, account.workspace_id)  # the same (1.1 ms a batch)
    now = utcnow()
    fast, rows, contacts = ({}, [], {}) if db.is_postgres(session.get_bind()) else _apply_by_provider_id(
        session, account, reports, now)
    rest = [r for r in reports if r.provider_message_id not in fast] if fast else reports
    by_id, by_key = _find(session, account, rest) if rest else ({}, {})
    current: dict[int, str] = {}
    later: dict[int, DeliveryReport] = {}
    events: dict[int, list[DeliveryReport]] = defaultdict(list)
    unknown: list[str] = []
    for report in rest:
        row = by_id.get(report.provider_message_id or "") or by_key.get(report.key or "")
        if row is None:
            unknown.append(str(report.provider_message_id or report.key))
            continue
        status = current.setdefault(row.id, row.status)
        if RANK.get(report.status, -1) <= RANK.get(status, 0):
            continue
        current[row.id], later[row.id] = report.status, report
        events[row.id].append(report)
        contacts[row.id] = row.contact_id
    final = dict(fast.values())  # message id → the report that set its status
    for mid in _update(session, account.provider, later, now):
        final[mid] = later[mid]
        rows += [(mid, *_event(report, now)) for report in events[mid]]
    bulk.insert_rows(session, MessageEvent.__table__,
                     ("message_id", "status", "provider_status", "error_code", "at", "detail"), rows)
    outbox.note_delivery(session, account.workspace_id, {mid: report.status for mid, report in final.items()},
                         connections)
    errored = [cid for mid, report in final.items() if report.status == "error" and (cid := contacts[mid]) is not None]
    archived = archive_contacts(session, account.workspace_id, errored) if errored else 0
    if unknown:
        log.info("%d delivery report(s) for unknown messages on %s account %s, e.g. %s", len(unknown),
                 account.provider, account.id, ", ".join(unknown[:5]))
    applied = len(rows)
    return Applied(len(reports), applied, len(reports) - applied - len(unknown), len(unknown), archived)


def _event(report: DeliveryReport, now: datetime) -> tuple[Any, ...]:
    """A report's message_events row, but for the message id."""
    return (report.status, (report.provider_status or "")[:64] or None, (report.error_code or "")[:32] or None,
            report.at or now, report.detail)


# A report applies only to a message of lower RANK (see the module docstring), checked in the UPDATE itself.
_RANK_SQL = "CASE {} " + " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in RANK.items()) + " ELSE 0 END"
_HIGHER = f"{_RANK_SQL.format('messages.status')} < {_RANK_SQL.format('new.status')}"
_FAILED_SQL = ", ".join(f"'{status}'" for status in sorted(FAILED))
_APPLY = (f"status = new.status, status_at = :status_at, "
          f"error_code = CASE WHEN new.status IN ({_FAILED_SQL}) THEN new.error_code ELSE messages.error_code END, "
          f"reason = CASE WHEN new.status IN ({_FAILED_SQL}) THEN new.reason ELSE messages.reason END")


def _changes(provider: str, report: DeliveryReport) -> tuple[str, str | None, str | None]:
    """(status, error code, reason) that a report writes to its message."""
    failed = report.status in FAILED
    return report.status, (report.error_code or "")[:32] or None, reason(provider, report) if failed else None


_FAST_WHERE = f"messages.provider = :provider AND messages.workspace_id = :workspace_id AND {_HIGHER}"


_FastApplied = tuple[dict[str, tuple[int, DeliveryReport]], list[tuple[Any, ...]], dict[int, int | None]]


def _apply_by_provider_id(session: Session, account: ProviderAccount, reports: Sequence[DeliveryReport],
                          now: datetime) -> _FastApplied:
    """Applies the reports whose provider id no other report of the batch names, in one guarded UPDATE joined
    on the provider id. Returns ({provider id: (message id, report)} of those it applied, their message_events
    rows, their contacts by message id)."""
    named = Counter(r.provider_message_id for r in reports if r.provider_message_id)
    single = {r.provider_message_id: r for r in reports if r.provider_message_id and named[r.provider_message_id] == 1}
    if not single:
        return {}, [], {}
    provider = account.provider
    changes = [(pid, *_changes(provider, report)) for pid, report in single.items()]
    event_of = {pid: _event(report, now) for pid, report in single.items()}
    found = bulk.update_from_rows_returning(
        session, Message.__table__, "provider_message_id", ("provider_message_id", "status", "error_code", "reason"),
        changes, _APPLY, where=_FAST_WHERE, params={"status_at": now, "provider": provider,
                                                    "workspace_id": account.workspace_id},
        returning="messages.id, messages.provider_message_id, messages.contact_id",
        index="ix_messages_provider_message_id")
    applied = {pid: (mid, single[pid]) for mid, pid, _ in found}
    return applied, [(mid, *event_of[pid]) for mid, pid, _ in found], {mid: contact for mid, _, contact in found}


def _update(session: Session, provider: str, final: dict[int, DeliveryReport], now: datetime) -> set[int]:
    """Guarded UPDATEs .. FROM (core/bulk.py) by message id; returns the ids they changed. A failed status also
    sets the error code and reason; the others leave them as they are."""
    rows = [(mid, *_changes(provider, report)) for mid, report in final.items()]
    return {mid for (mid,) in bulk.update_from_rows_returning(
        session, Message.__table__, "id", ("id", "status", "error_code", "reason"), rows, _APPLY,
        where=_HIGHER, params={"status_at": now}, returning="messages.id")}


_C = Contact.__table__.c
_ARCHIVE = (update(Contact.__table__)  # a Core statement, built once: the ORM's bulk UPDATE cost ~1 ms a batch
            .where(_C.workspace_id == bindparam("ws"), _C.id.in_(bindparam("ids", expanding=True)),
                   _C.status == "active").values(status="archived"))


def archive_contacts(session: Session, workspace_id: int, contact_ids: Sequence[int]) -> int:
    """Archives active contacts after a permanent error, when the workspace's `auto_archive_errors` is on
    (dispatch may call it too, for numbers a gateway refuses at send time). Returns how many it archived."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None or not (workspace.settings or {}).get("auto_archive_errors", True):
        return 0
    archived = 0
    for chunk in _chunks(set(contact_ids)):
        result = session.connection().execute(_ARCHIVE, {"ws": workspace_id, "ids": chunk})
        archived += result.rowcount or 0
    if archived:
        log.info("archived %d contact(s) of workspace %s after permanent delivery errors", archived, workspace_id)
    return archived
