"""Salesforce triggers: Outbound Messages (SOAP, checked against the organization id, answered with the
ACK the platform expects) and JSON callouts from Flow HTTP actions or the package's Apex action.

Outbound Message: the endpoint URL configured in Salesforce picks the action with its query string, e.g.
`.../webhooks/plugins/salesforce/<token>?template=welcome` (send) or `?action=opt_out`. Fields
`SMS_Template__c` / `SMS_Text__c` on the sObject override the query. Each Notification/Id is the action key,
so Salesforce's retries of the same notification are dropped by core.

JSON: `{"action": "send_template", "recordId": "003..", "template": "welcome", "variables": {..},
"requestId": ".."}` or a list of those under `"requests"` (invocable Apex is bulkified). Other actions:
`{"action": "start_campaign", "campaignId": "701..", "smsconnectCampaignId": 12}` and
`{"action": "opt_out", "recordId": "003..", "category": "marketing"}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree

from core.plugins.contract import Action, InboundRequest, OptOut, Reply, SendTemplate, StartCampaign, TriggerResult
from core.plugins.errors import TriggerRefused

SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"
OM = "{http://soap.sforce.com/2005/09/outbound}"
SOBJECT = "{urn:sobject.enterprise.soap.sforce.com}"
ACK = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
"""
SECRET_HEADER = "X-Smsconnect-Secret"
MAX_BODY = 1024 * 1024


def parse(request: InboundRequest, settings: Mapping[str, Any]) -> TriggerResult:
    if len(request.body) > MAX_BODY:
        raise TriggerRefused("the body is too large", 413)
    if request.body.lstrip()[:1] == b"<":
        return outbound_message(request, settings)
    return json_callout(request, settings)


def _same_org(given: str, ours: str) -> bool:
    # Org ids come as 15 or 18 characters; the first 15 are the id, the last 3 a checksum.
    return bool(given) and bool(ours) and given[:15] == ours[:15]


def outbound_message(request: InboundRequest, settings: Mapping[str, Any]) -> TriggerResult:
    try:
        root = ElementTree.fromstring(request.body)
    except ElementTree.ParseError as exc:
        raise TriggerRefused(f"the body is not XML: {exc}") from None
    notifications = root.find(f"{SOAP}Body/{OM}notifications")
    if notifications is None:
        raise TriggerRefused("not an Outbound Message: no soapenv:Body/notifications")
    org = (notifications.findtext(f"{OM}OrganizationId") or "").strip()
    if not settings.get("organization_id"):
        raise TriggerRefused("set organization_id in the connection before using Outbound Messages", 403)
    if not _same_org(org, settings["organization_id"]):
        raise TriggerRefused(f"organization {org!r} is not the connected one", 403)
    actions = [a for n in notifications.findall(f"{OM}Notification") if (a := _notification(n, request.query))]
    return TriggerResult(actions, Reply(200, ACK, "text/xml; charset=utf-8"))


def _notification(node: ElementTree.Element, query: Mapping[str, str]) -> Action | None:
    key = (node.findtext(f"{OM}Id") or "").strip()
    sobject = node.find(f"{OM}sObject")
    if not key or sobject is None:
        raise TriggerRefused("a Notification lacks its Id or sObject")
    values = {child.tag.replace(SOBJECT, ""): (child.text or "").strip() for child in sobject}
    record_id = values.get("Id", "")
    if not record_id:
        raise TriggerRefused(f"notification {key} has no sObject Id")
    if query.get("action") == "opt_out":
        return OptOut(key=f"om-{key}", record_id=record_id, category=query.get("category") or "marketing")
    template = values.get("SMS_Template__c") or query.get("template")
    text = values.get("SMS_Text__c") or query.get("text")
    if not template and not text:
        raise TriggerRefused("say what to send: ?template=<name> on the endpoint URL, or SMS_Template__c")
    return SendTemplate(key=f"om-{key}", record_id=record_id, template=template or None,
                        text=None if template else text)


def json_callout(request: InboundRequest, settings: Mapping[str, Any]) -> TriggerResult:
    secret = settings.get("trigger_secret")
    if secret and not hmac.compare_digest(request.header(SECRET_HEADER) or "", secret):
        raise TriggerRefused(f"missing or wrong {SECRET_HEADER} header", 403)
    try:
        data = json.loads(request.body)
    except ValueError as exc:
        raise TriggerRefused(f"the body is not JSON: {exc}") from None
    items = data.get("requests") if isinstance(data, dict) and "requests" in data else [data]
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise TriggerRefused("expected a JSON object, or a list of them under 'requests'")
    actions = [_json_action(item, request.body, n) for n, item in enumerate(items)]
    reply = json.dumps({"accepted": len(actions), "keys": [a.key for a in actions]}).encode()
    return TriggerResult(actions, Reply(202, reply, "application/json"))


def _json_action(item: Mapping[str, Any], body: bytes, n: int) -> Action:
    key = str(item.get("requestId") or f"{hashlib.sha256(body).hexdigest()[:24]}-{n}")
    kind = item.get("action", "send_template")
    if kind == "start_campaign":
        if not item.get("campaignId") or not isinstance(item.get("smsconnectCampaignId"), int):
            raise TriggerRefused("start_campaign needs campaignId (Salesforce) and smsconnectCampaignId (ours)")
        return StartCampaign(key=f"js-{key}", segment_id=str(item["campaignId"]),
                             campaign_id=item["smsconnectCampaignId"])
    record_id = str(item.get("recordId") or "")
    if not record_id:
        raise TriggerRefused(f"{kind} needs recordId")
    if kind == "opt_out":
        return OptOut(key=f"js-{key}", record_id=record_id, category=str(item.get("category") or "marketing"))
    if kind != "send_template":
        raise TriggerRefused(f"unknown action {kind!r} (send_template, start_campaign, opt_out)")
    variables = item.get("variables") or {}
    if not isinstance(variables, dict):
        raise TriggerRefused("variables must be an object")
    if not item.get("template") and not item.get("text"):
        raise TriggerRefused("send_template needs template or text")
    return SendTemplate(key=f"js-{key}", record_id=record_id, template=item.get("template") or None,
                        text=None if item.get("template") else item.get("text"), variables=variables)
