"""The installable package: the zip's metadata is well-formed XML with the right members; deploy via the fake."""

from __future__ import annotations

import io
import zipfile
from xml.etree import ElementTree

import pytest
from pytest_httpserver import HTTPServer

from plugins.salesforce import packaging
from plugins.salesforce.client import Client
from plugins.salesforce.settings import SalesforceSettings
from tests.fakes import salesforce as fake

MD = "{http://soap.sforce.com/2006/04/metadata}"
URL = "https://sms.example.com/webhooks/plugins/salesforce/tok123"
EXPECTED = {
    "ApexClass": ["SmsConnectSendSms", "SmsConnectSendSmsTest"],
    "ApexTrigger": ["SmsMessageSend"],
    "CustomField": ["Activity.SMS_Event_Id__c"],
    "CustomObject": ["SMS_Message__c"],
    "NamedCredential": ["SMS_Connect"],
    "PermissionSet": ["SMS_Connect_User"],
    "QuickAction": ["Contact.Send_SMS", "Lead.Send_SMS"],
    "RemoteSiteSetting": ["SMS_Connect"],
}


def built() -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(packaging.build(URL)))


def test_zip_has_package_xml_with_the_right_members() -> None:
    root = ElementTree.fromstring(built().read("package.xml"))
    types = {t.findtext(f"{MD}name"): [m.text for m in t.findall(f"{MD}members")] for t in root.findall(f"{MD}types")}
    assert types == EXPECTED
    assert root.findtext(f"{MD}version") == "59.0"


def test_every_metadata_file_is_well_formed_and_every_member_has_its_file() -> None:
    zf = built()
    for name in zf.namelist():
        if not name.endswith((".cls", ".trigger")):
            ElementTree.fromstring(zf.read(name))  # raises on malformed XML
    names = set(zf.namelist())
    folders = {kind: folder for folder, kind in packaging.FOLDERS.items()}
    for kind, members in EXPECTED.items():
        for member in members:
            if kind == "CustomField":
                assert "objects/Activity.object" in names
                continue
            extension = {"ApexClass": "cls", "ApexTrigger": "trigger"}.get(kind)
            found = [n for n in names if n.startswith(f"{folders[kind]}/{member}.")]
            assert found, f"{kind} {member} has no file"
            if extension:
                assert f"{folders[kind]}/{member}.{extension}-meta.xml" in names


def test_the_connector_url_is_filled_in() -> None:
    zf = built()
    credential = ElementTree.fromstring(zf.read("namedCredentials/SMS_Connect.namedCredential"))
    assert credential.findtext(f"{MD}endpoint") == URL
    site = ElementTree.fromstring(zf.read("remoteSiteSettings/SMS_Connect.remoteSite"))
    assert site.findtext(f"{MD}url") == "https://sms.example.com"
    assert b"{{" not in b"".join(zf.read(n) for n in zf.namelist())


def test_plain_http_connector_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="https"):
        packaging.build("http://sms.example.com/webhooks/plugins/salesforce/tok")


def test_deploy_sends_the_zip_and_waits_for_success(httpserver: HTTPServer) -> None:
    org = fake.FakeOrg().attach(httpserver)
    client = Client(SalesforceSettings().load(fake.settings()), fake.local_session(httpserver))
    zipped = packaging.build(URL)
    result = packaging.deploy(client, zipped, check_only=True, sleep=lambda _s: None)
    assert result["state"] == "Succeeded" and result["id"].startswith("0Af")
    deployed = org.deploys[result["id"]]
    assert deployed["zip"] == zipped and deployed["check_only"] is True
    assert (org.calls["deploy"], org.calls["check_deploy"]) == (1, 2)
