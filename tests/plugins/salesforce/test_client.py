"""The client: JWT bearer login, and every library error decided fatal or retriable at one boundary."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_httpserver import HTTPServer
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceRefusedRequest

from core.plugins.errors import AuthFailed, PermissionMissing, RateLimited, Unavailable
from plugins.salesforce.client import Client, translate
from plugins.salesforce.settings import SalesforceSettings
from tests.fakes import salesforce as fake


def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_jwt_bearer_login_signs_an_assertion_and_queries(httpserver: HTTPServer) -> None:
    org = fake.FakeOrg().attach(httpserver)
    org.add_people("Contact", 3)
    settings = SalesforceSettings().load({"auth": "jwt", "username": "admin@acme.example",
                                          "consumer_key": "3MVG9connectedapp", "private_key": pem()})
    client = Client(settings, fake.local_session(httpserver))
    pages = list(client.pages("SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id"))
    assert len(pages[0]) == 3 and org.logins == 1
    claims = jwt.decode(org.jwt_assertions[0], options={"verify_signature": False})
    assert claims["iss"] == "3MVG9connectedapp" and claims["sub"] == "admin@acme.example"
    assert client.api_usage == {"used": 1, "total": 15000}


def test_refused_jwt_is_auth_failed(httpserver: HTTPServer) -> None:
    fake.FakeOrg().attach(httpserver).wrong_password = True
    settings = SalesforceSettings().load({"auth": "jwt", "username": "a@b.c", "consumer_key": "k",
                                          "private_key": pem()})
    with pytest.raises(AuthFailed, match="invalid_grant"), pytest.warns(UserWarning):
        Client(settings, fake.local_session(httpserver)).login()


@pytest.mark.parametrize(("exc", "expected"), [
    (SalesforceRefusedRequest("u", 403, "query", [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "x"}]),
     RateLimited),
    (SalesforceRefusedRequest("u", 403, "query", [{"errorCode": "API_DISABLED_FOR_ORG", "message": "x"}]),
     PermissionMissing),
    (SalesforceGeneralError("u", 429, "query", [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "x"}]),
     RateLimited),
    (SalesforceGeneralError("u", 503, "query", b"Service Unavailable"), Unavailable),
])
def test_errors_are_fatal_or_retriable_by_status_and_code(exc, expected) -> None:
    assert type(translate(exc)) is expected
