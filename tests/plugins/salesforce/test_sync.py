"""Salesforce sync through core: paging over 2,500 records, re-login mid-sync, limits, deletions, segments."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.models import Consent, Contact, ExternalId, Group, GroupMember
from core.plugins import sync
from core.plugins.errors import RateLimited
from core.runtime import Runtime
from tests.fakes import salesforce as fake
from tests.plugins.conftest import connection


def count(rt: Runtime, model: type, *where: object) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_paginated_query_of_2500_records_lands_every_contact(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    org.add_people("Contact", 2500)
    ws, cid = connect(objects=["Contact"], sync_segments=False)
    result = sync.run(rt, cid)
    assert (result.created, result.pages) == (2500, 2)
    assert (org.calls["query"], org.calls["query_more"]) == (1, 1)  # nextRecordsUrl followed once
    assert count(rt, Contact, Contact.workspace_id == ws.id) == 2500
    assert count(rt, ExternalId, ExternalId.source == "salesforce") == 2500
    with rt.sessions() as session:
        contact = session.scalar(select(Contact).where(Contact.phone == "+48600000007"))
        assert contact.attributes["first_name"] == "First7"
        assert {c.category: c.opted_in for c in contact.consents} == {"marketing": True}
    assert connection(rt, cid).last_sync["created"] == 2500


def test_sync_twice_creates_no_duplicates(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    org.add_people("Contact", 30)
    org.add_people("Lead", 20, start=1000)
    ws, cid = connect()
    first = sync.run(rt, cid)
    second = sync.run(rt, cid)
    third = sync.run(rt, cid, full=True)
    assert first.created == 50
    assert second.created == second.updated == 0  # the cursor holds: nothing new
    assert (third.created, third.updated) == (0, 50)
    assert count(rt, Contact, Contact.workspace_id == ws.id) == 50


def test_sync_resumes_from_stored_cursor_with_changes_only(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    ids = org.add_people("Contact", 10)
    _, cid = connect(objects=["Contact"])
    sync.run(rt, cid)
    org.touch("Contact", ids[3], tick=5000, FirstName="Renamed", SMS_Opt_Out__c=True)
    result = sync.run(rt, cid)
    assert (result.created, result.updated) == (0, 1)
    with rt.sessions() as session:
        contact = session.scalar(select(Contact).where(Contact.phone == "+48600000003"))
        assert contact.attributes["first_name"] == "Renamed"
        consent = session.scalar(select(Consent).where(Consent.contact_id == contact.id))
        assert consent.opted_in is False and consent.source == "salesforce"


def test_deleted_records_soft_delete_ours(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    ids = org.add_people("Contact", 5)
    _, cid = connect(objects=["Contact"])
    sync.run(rt, cid)
    org.touch("Contact", ids[1], tick=9000, IsDeleted=True)
    result = sync.run(rt, cid)
    assert result.deleted == 1
    with rt.sessions() as session:
        contact = session.scalar(select(Contact).where(Contact.phone == "+48600000001"))
        assert contact.status == "deleted" and contact.deleted_at is not None


def test_session_expiring_mid_sync_logs_in_again_once(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    org.add_people("Contact", 25)
    org.page_size = 10
    _, cid = connect(objects=["Contact"], sync_segments=False)
    org.expire_after = 1  # the first page works, the nextRecordsUrl call meets INVALID_SESSION_ID
    result = sync.run(rt, cid)
    assert result.created == 25
    assert org.logins == 2
    assert connection(rt, cid).status == "active"


def test_request_limit_exceeded_backs_off_and_keeps_the_cursor(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    org.add_people("Contact", 25)
    _, cid = connect(objects=["Contact"], sync_segments=False)
    org.page_size = 10
    org.limit_after = 2  # the query and one nextRecordsUrl pass, the next one is refused
    with pytest.raises(RateLimited) as caught:
        sync.run(rt, cid)
    assert caught.value.retry_after >= 3600  # the daily quota: back off for hours
    stored = connection(rt, cid)
    assert stored.status == "active" and "REQUEST_LIMIT_EXCEEDED" in stored.last_error
    assert count(rt, Contact) == 20 and stored.contacts_cursor  # two pages committed with their cursor
    org.limit_after, org.limit_exceeded = None, False
    result = sync.run(rt, cid)
    assert result.created == 5


def test_bad_credentials_stop_the_connection(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    _, cid = connect()
    org.wrong_password = True
    sync.run(rt, cid)
    stored = connection(rt, cid)
    assert stored.status == "stopped" and "INVALID_LOGIN" in stored.status_reason


def test_unknown_field_is_a_settings_error(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    org.add_people("Contact", 2)
    _, cid = connect(objects=["Contact"], attribute_fields=["No_Such__c"])
    sync.run(rt, cid)
    stored = connection(rt, cid)
    assert stored.status == "stopped" and "INVALID_FIELD" in stored.status_reason


def test_campaigns_become_static_groups_with_members(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    people = org.add_people("Contact", 6) + org.add_people("Lead", 2, start=100)
    org.add_campaign(1, "Spring sale", people[:3] + people[-1:], tick=50)
    ws, cid = connect()
    result = sync.run(rt, cid)
    assert (result.segments, result.members_added) == (2, 4)  # campaign page + member page
    with rt.sessions() as session:
        group = session.scalar(select(Group).where(Group.workspace_id == ws.id))
        assert group.name == "salesforce: Spring sale"
    assert count(rt, GroupMember, GroupMember.group_id == group.id) == 4
    member = next(r for r in org.rows["CampaignMember"] if r["ContactId"] == people[0])
    member.update(IsDeleted=True, SystemModstamp=fake.stamp(10_000))
    org._sort("CampaignMember")
    again = sync.run(rt, cid)
    assert again.members_removed == 1
    assert count(rt, GroupMember, GroupMember.group_id == group.id) == 3


def test_invalid_phone_is_reported_not_fatal(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    org.add_people("Contact", 3)
    org.add_people("Contact", 1, start=50, MobilePhone="n/a", Phone=None)
    _, cid = connect(objects=["Contact"])
    result = sync.run(rt, cid)
    assert (result.created, result.skipped) == (3, 1)
    assert "no valid phone" in connection(rt, cid).last_sync["errors"][0]["error"]
