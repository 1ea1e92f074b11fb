"""Contacts/Leads and Campaigns/CampaignMembers, incremental by SystemModstamp through queryAll (so deleted
rows show up), one Page per Salesforce page of up to 2,000 records.

The cursor is JSON of `{object: "<SystemModstamp>|<Id>"}`, the last row seen per object. Queries are
sorted by (SystemModstamp, Id), so resuming from a cursor is safe (singer_sdk's `is_sorted`). SOQL datetime
literals have whole seconds, so the query starts at the cursor's second and rows up to the cursor itself are
dropped here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from core.plugins.contract import ContactRecord, Page, SegmentRecord
from plugins.salesforce.client import Client

PERSON_FIELDS = ("Id", "FirstName", "LastName", "Email", "SystemModstamp", "IsDeleted")
CAMPAIGN_FIELDS = ("Id", "Name", "IsActive", "SystemModstamp", "IsDeleted")
MEMBER_FIELDS = ("Id", "CampaignId", "ContactId", "LeadId", "SystemModstamp", "IsDeleted")
ATTRIBUTES = {"FirstName": "first_name", "LastName": "last_name", "Email": "email"}


def soql(obj: str, fields: Sequence[str], mark: str | None) -> str:
    """SELECT .. FROM obj [WHERE SystemModstamp >= <cursor's second>] ORDER BY SystemModstamp, Id."""
    where = ""
    if mark:
        stamp = mark.split("|", 1)[0]  # 2024-05-01T10:15:30.000+0000
        where = f" WHERE SystemModstamp >= {stamp[:19]}Z"
    return f"SELECT {', '.join(dict.fromkeys(fields))} FROM {obj}{where} ORDER BY SystemModstamp, Id"


def _mark(row: Mapping[str, Any]) -> str:
    return f"{row['SystemModstamp']}|{row['Id']}"


def _after(rows: list[dict[str, Any]], mark: str | None) -> list[dict[str, Any]]:
    if not mark:
        return rows
    stamp, _, last_id = mark.partition("|")
    return [r for r in rows if (r["SystemModstamp"], r["Id"]) > (stamp, last_id)]


def changed(client: Client, obj: str, fields: Sequence[str], state: dict[str, str],
            extra_where: str = "") -> Iterator[list[dict[str, Any]]]:
    """Pages of rows of `obj` changed after state[obj] (deleted ones included); moves state[obj]."""
    mark = state.get(obj)
    for rows in client.pages(soql(obj, fields, mark), include_deleted=True):
        fresh = _after(rows, mark)
        if rows:
            state[obj] = _mark(rows[-1])
        yield fresh


def person_fields(settings: Mapping[str, Any], obj: str) -> list[str]:
    fields = [*PERSON_FIELDS, *settings["phone_fields"], *settings["attribute_fields"]]
    if settings.get("opt_out_field"):
        fields.append(settings["opt_out_field"])
    if obj == "Lead":
        fields.append("IsConverted")
    return fields


def to_contact(row: Mapping[str, Any], obj: str, settings: Mapping[str, Any]) -> ContactRecord | None:
    """A Contact or Lead row as a record; a converted Lead is skipped (its Contact carries the person)."""
    if row.get("IsConverted") and not row.get("IsDeleted"):
        return None
    phone = next((row[f] for f in settings["phone_fields"] if row.get(f)), None)
    attributes: dict[str, Any] = {ours: row.get(theirs) for theirs, ours in ATTRIBUTES.items() if row.get(theirs)}
    attributes["salesforce_type"] = obj
    for name in settings["attribute_fields"]:
        value = row.get(name)
        if value is None or isinstance(value, str | int | float | bool):
            attributes[name] = value
    consents = {}
    if settings.get("opt_out_field") and settings["opt_out_field"] in row:
        consents[settings["consent_category"]] = not bool(row[settings["opt_out_field"]])
    return ContactRecord(external_id=row["Id"], phone=phone, attributes=attributes, consents=consents,
                         deleted=bool(row.get("IsDeleted")))


def contact_pages(client: Client, settings: Mapping[str, Any], cursor: str | None) -> Iterator[Page[ContactRecord]]:
    state: dict[str, str] = json.loads(cursor) if cursor else {}
    for obj in settings["objects"]:
        for rows in changed(client, obj, person_fields(settings, obj), state):
            records = [r for r in (to_contact(row, obj, settings) for row in rows) if r is not None]
            yield Page(records, json.dumps(state, sort_keys=True))


def segment_pages(client: Client, settings: Mapping[str, Any], cursor: str | None) -> Iterator[Page[SegmentRecord]]:
    """Campaigns first (names, deletions), then CampaignMembers grouped per campaign into added/removed."""
    if not settings.get("sync_segments", True):
        return
    state: dict[str, str] = json.loads(cursor) if cursor else {}
    for rows in changed(client, "Campaign", CAMPAIGN_FIELDS, state):
        records = [SegmentRecord(external_id=r["Id"], name=r["Name"], deleted=bool(r.get("IsDeleted")))
                   for r in rows]
        yield Page(records, json.dumps(state, sort_keys=True))
    for rows in changed(client, "CampaignMember", MEMBER_FIELDS, state):
        added: dict[str, list[str]] = defaultdict(list)
        removed: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            person = r.get("ContactId") or r.get("LeadId")
            if person:
                (removed if r.get("IsDeleted") else added)[r["CampaignId"]].append(person)
        records = [SegmentRecord(external_id=cid, added=tuple(added[cid]), removed=tuple(removed[cid]))
                   for cid in dict.fromkeys([*added, *removed])]
        yield Page(records, json.dumps(state, sort_keys=True))
