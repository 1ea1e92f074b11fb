"""The CRM plugin contract: one Protocol and the frozen records that cross it (STYLE.md section 3).

A plugin is a pure adapter. Core builds it as `cls(settings, http)` with decrypted settings and a shared
`requests.Session`, and owns everything else: scheduling, storing cursors after their page commits, the
write-back outbox, retries and encryption.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import requests
from marshmallow import Schema

R = TypeVar("R")


@dataclass(frozen=True)
class Problem:
    """One thing `check()` found wrong; `fatal` problems stop syncs until fixed."""

    code: str  # bad_credentials | missing_permission | api_disabled | missing_field | ...
    message: str
    fatal: bool = True


@dataclass(frozen=True)
class Page(Generic[R]):
    """One page of records and the opaque cursor to resume after it (stored once the page commits)."""

    records: Sequence[R]
    cursor: str | None


@dataclass(frozen=True)
class ContactRecord:
    """A CRM person. `phone` is raw: core normalises it to E.164 and skips records without a valid one."""

    external_id: str
    phone: str | None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    consents: Mapping[str, bool] = field(default_factory=dict)
    deleted: bool = False


@dataclass(frozen=True)
class SegmentRecord:
    """A CRM list (becomes a static group). Members are contact external ids; `name` None keeps the old one."""

    external_id: str
    name: str | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    deleted: bool = False


@dataclass(frozen=True)
class InboundRequest:
    """A trigger request as the CRM sent it; no Flask in sight."""

    method: str
    path: str
    headers: Mapping[str, str]  # keys lowercased
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class SendTemplate:
    """Send a template (or text) to one CRM record. `key` de-duplicates CRM retries."""

    key: str
    record_id: str
    template: str | None = None
    text: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StartCampaign:
    """Start a copy of one of our campaigns for the members of a CRM segment."""

    key: str
    segment_id: str
    campaign_id: int


@dataclass(frozen=True)
class OptOut:
    """Withdraw one consent of a CRM record."""

    key: str
    record_id: str
    category: str = "marketing"


Action = SendTemplate | StartCampaign | OptOut


@dataclass(frozen=True)
class Reply:
    """The exact HTTP answer the CRM expects (e.g. Salesforce's SOAP ACK)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


@dataclass(frozen=True)
class TriggerResult:
    actions: Sequence[Action]
    reply: Reply


@dataclass(frozen=True)
class ActivityEvent:
    """Something that happened to a message or contact, to be written to the CRM as an activity.

    `id` is the idempotency key sent to the CRM: writing the same event twice creates one activity.
    """

    id: str
    kind: str  # delivered | failed | clicked | replied | opted_out
    record_id: str  # the CRM's id of the person
    at: datetime
    text: str = ""
    status: str = ""
    campaign: str | None = None
    detail: str | None = None


KINDS = ("delivered", "failed", "clicked", "replied", "opted_out")


@dataclass(frozen=True)
class WriteResult:
    """One result per event: failures are results, not exceptions."""

    event_id: str
    ok: bool
    error: str | None = None
    remote_id: str | None = None


@runtime_checkable
class CrmPlugin(Protocol):
    name: ClassVar[str]  # equals the entry-point name
    settings_schema: ClassVar[type[Schema]]  # fields with metadata secret=True are stored encrypted and masked

    def __init__(self, settings: Mapping[str, Any], http: requests.Session) -> None: ...

    def check(self) -> list[Problem]: ...

    def sync_contacts(self, cursor: str | None) -> Iterator[Page[ContactRecord]]: ...

    def sync_segments(self, cursor: str | None) -> Iterator[Page[SegmentRecord]]: ...

    def parse_trigger(self, request: InboundRequest) -> TriggerResult: ...

    def write_back(self, events: Sequence[ActivityEvent]) -> list[WriteResult]: ...
