"""Triggers: Outbound Messages (org id checked, exact ACK, repeats dropped) and JSON Flow/Apex callouts."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from core import campaigns, db
from core.models import Campaign, Consent, Contact, Message
from core.plugins import sync
from core.runtime import Runtime
from plugins.salesforce.triggers import ACK
from tests.fakes import salesforce as fake
from tests.plugins.conftest import connection, perform_queued


def outbound_message(org_id: str = fake.ORG_ID, notification: str = "04l5Y00002lRDRNQA4",
                     record: str = "003000000000001AAA") -> bytes:
    """An Outbound Message exactly as Salesforce posts it (shared/crm-apis.md 1.7)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org_id}</OrganizationId>
   <ActionId>04k5Y0000008Q1hQAE</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/59.0/00D5Y000001MPM7</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/00D5Y000001MPM7</PartnerUrl>
   <Notification>
    <Id>{notification}</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{record}</sf:Id>
     <sf:MobilePhone>+48600000001</sf:MobilePhone>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


def setup(rt: Runtime, org: fake.FakeOrg, connect: Any, **extra: Any) -> tuple[Any, int, str]:
    org.add_people("Contact", 3)
    ws, cid = connect(objects=["Contact"], **extra)
    sync.run(rt, cid)
    return ws, cid, f"/webhooks/plugins/salesforce/{connection(rt, cid).webhook_token}"


def messages(rt: Runtime) -> list[Message]:
    with rt.sessions() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def test_outbound_message_is_acked_and_sends(rt, org, connect, client, run_jobs) -> None:
    _, _, url = setup(rt, org, connect)
    response = client.post(f"{url}?text=Hello%20from%20Salesforce", data=outbound_message(),
                           headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
    assert response.status_code == 200 and response.data == ACK
    assert response.headers["Content-Type"].startswith("text/xml")
    run_jobs()
    sent = messages(rt)
    assert [(m.phone, m.text) for m in sent] == [("+48600000001", "Hello from Salesforce")]


def test_repeated_notification_is_acked_but_sent_once(rt, org, connect, client) -> None:
    _, _, url = setup(rt, org, connect)
    for _ in range(3):  # Salesforce retries until it sees the ACK
        assert client.post(f"{url}?text=Hi", data=outbound_message()).data == ACK
    perform_queued(rt)
    assert len(messages(rt)) == 1


def test_outbound_message_from_another_org_is_refused(rt, org, connect, client) -> None:
    _, _, url = setup(rt, org, connect)
    response = client.post(f"{url}?text=Hi", data=outbound_message(org_id="00D000000000001AAA"))
    assert response.status_code == 403
    assert b"<faultstring>" in response.data and b"not the connected one" in response.data
    assert perform_queued(rt) == 0 and messages(rt) == []


def test_unknown_token_is_404(client, rt) -> None:
    assert client.post("/webhooks/plugins/salesforce/nope", data=outbound_message()).status_code == 404


def test_json_callout_sends_and_answers_with_keys(rt, org, connect, client, run_jobs) -> None:
    _, _, url = setup(rt, org, connect, trigger_secret="flow-secret-0123456789")
    body = {"requests": [{"action": "send_template", "recordId": fake.sf_id("003", 2), "text": "Hi {{ first_name }}",
                          "requestId": "r-1"}]}
    refused = client.post(url, json=body)
    assert refused.status_code == 403 and refused.json["message"].startswith("missing or wrong")
    response = client.post(url, json=body, headers={"X-Smsconnect-Secret": "flow-secret-0123456789"})
    assert response.status_code == 202 and response.json == {"accepted": 1, "keys": ["js-r-1"]}
    run_jobs()
    assert [(m.phone, m.text) for m in messages(rt)] == [("+48600000002", "Hi First2")]


def test_bad_json_is_400(rt, org, connect, client) -> None:
    _, _, url = setup(rt, org, connect)
    assert client.post(url, data=b"{nope", content_type="application/json").status_code == 400
    assert client.post(url, json={"action": "dance", "recordId": "003"}).status_code == 400


def test_opt_out_action_withdraws_consent(rt, org, connect, client) -> None:
    _, _, url = setup(rt, org, connect)
    client.post(url, json={"action": "opt_out", "recordId": fake.sf_id("003", 1), "requestId": "o-1"})
    perform_queued(rt)
    with rt.sessions() as session:
        consent = session.scalar(select(Consent).join(Contact).where(Contact.phone == "+48600000001"))
        assert consent.opted_in is False and consent.source == "salesforce"


def test_start_campaign_for_a_synced_segment(rt, org, connect, client) -> None:
    people = org.add_people("Contact", 3)
    salesforce_campaign = org.add_campaign(1, "VIP", people[:2], tick=50)
    ws, cid = connect(objects=["Contact"])
    sync.run(rt, cid)
    with db.transaction(rt.sessions) as session:
        template = campaigns.create_campaign(session, ws.id, {"name": "VIP offer", "sender_id": "Shop",
                                                               "variants": [{"text": "VIP -30%"}]})
    url = f"/webhooks/plugins/salesforce/{connection(rt, cid).webhook_token}"
    response = client.post(url, json={"action": "start_campaign", "campaignId": salesforce_campaign,
                                      "smsconnectCampaignId": template.id, "requestId": "c-1"})
    assert response.status_code == 202
    perform_queued(rt)
    with rt.sessions() as session:
        copy = session.scalar(select(Campaign).where(Campaign.id != template.id))
        assert copy is not None and copy.status != "draft" and copy.recipients == 2
        assert json.dumps(copy.audience) == json.dumps({"groups": [copy.audience["groups"][0]]})
