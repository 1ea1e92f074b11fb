"""Links API: domains (admin), manual links (editor), counts per link and per domain/suffix, isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clicks, db, links
from core.links import LinkOptions, Recipient
from core.models.base import utcnow
from tests.factories import Tenant

BROWSER = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"}


def follow(client, short_url, agent=BROWSER):
    path = "/" + short_url.split("/", 3)[3]
    host = short_url.split("/")[2]
    return client.get(path, headers={**agent, "Host": host})


def test_domains_are_managed_by_admins_and_read_by_viewers(client, rt):
    t = Tenant(rt, client)
    assert t.call("POST", "/api/v1/links/domains", "editor", json={"host": "s.example"}).status_code == 403
    made = t.call("POST", "/api/v1/links/domains", json={"host": "S.Example.", "message_limit": 10})
    assert made.status_code == 201, made.json
    assert made.json | {"created_at": None} == {"id": made.json["id"], "host": "s.example", "scheme": "https",
                                                "message_limit": 10, "messages_used": 0, "active": True,
                                                "created_at": None}
    assert t.call("POST", "/api/v1/links/domains", json={"host": "s.example"}).status_code == 409
    bad = t.call("POST", "/api/v1/links/domains", json={"host": "not a host"})
    assert bad.status_code == 422 and "host" in bad.json["errors"]["json"]
    url = f"/api/v1/links/domains/{made.json['id']}"
    assert t.call("PATCH", url, json={"message_limit": None}).json["message_limit"] is None
    assert t.call("DELETE", url).status_code == 204
    listed = t.call("GET", "/api/v1/links/domains", "viewer").json
    assert listed["total"] == 1 and listed["items"][0]["active"] is False


def test_create_link_and_read_its_counts(client, rt):
    t = Tenant(rt, client)
    contact = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200"}).json["id"]
    t.call("POST", "/api/v1/links/domains", json={"host": "s.example"})
    body = {"target_url": "https://shop.example/a?b=1", "suffix": "promo", "contact_id": contact}
    assert t.call("POST", "/api/v1/links", "viewer", json=body).status_code == 403
    made = t.call("POST", "/api/v1/links", "editor", json=body)
    assert made.status_code == 201, made.json
    link = made.json
    assert link["short_url"] == f"https://s.example/promo/{link['token']}" and link["clicks"] == 0
    assert follow(client, link["short_url"]).headers["Location"].startswith("https://shop.example/a?b=1&smsc_id=")
    follow(client, link["short_url"])
    follow(client, link["short_url"], {"User-Agent": "WhatsApp/2.23"})
    clicks.consume(rt.sessions, rt.redis, "test")
    got = t.call("GET", f"/api/v1/links/{link['id']}", "viewer").json
    assert (got["clicks"], got["unique_clickers"], got["bot_hits"]) == (2, 1, 1)
    assert got["first_click_at"] and got["contact_id"] == contact
    listed = t.call("GET", "/api/v1/links?suffix=promo", "viewer").json
    assert listed["total"] == 1 and listed["items"][0]["clicks"] == 2
    assert t.call("GET", "/api/v1/links?suffix=other", "viewer").json["total"] == 0


BAD_LINKS = [
    ({"target_url": "https://exa mple.com"}, "target_url"),
    ({"target_url": "javascript:alert(1)"}, "target_url"),
    ({"target_url": "https://a.example", "suffix": "bad suffix"}, "suffix"),
    ({"target_url": "https://a.example", "identity_mode": "sometimes"}, "identity_mode"),
    ({"target_url": "https://a.example", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ({"target_url": "https://a.example", "contact_id": 999999}, "contact_id"),
]


def test_bad_link_input_is_422_naming_the_field(client, rt):
    t = Tenant(rt, client)
    for body, field in BAD_LINKS:
        response = t.call("POST", "/api/v1/links", json=body)
        assert response.status_code == 422 and field in response.json["errors"]["json"], response.json
    assert t.call("GET", "/api/v1/links").json["total"] == 0


def test_full_domain_refuses_a_manual_link_with_409(client, rt):
    t = Tenant(rt, client)
    t.call("POST", "/api/v1/links/domains", json={"host": "s.example", "message_limit": 1})
    assert t.call("POST", "/api/v1/links", json={"target_url": "https://a.example"}).status_code == 201
    full = t.call("POST", "/api/v1/links", json={"target_url": "https://a.example"})
    assert full.status_code == 409 and "messaging limit" in full.json["message"]


def test_usage_counts_links_clicks_and_bots_per_domain_and_suffix(client, rt):
    t = Tenant(rt, client)
    t.call("POST", "/api/v1/links/domains", json={"host": "s.example"})
    with db.transaction(rt.sessions) as session:
        for suffix, n in (("spring", 3), (None, 2)):
            opts = LinkOptions(t.ws.id, utcnow() + timedelta(days=1), suffix=suffix, campaign_id=1)
            items = [("https://a.example", Recipient(i)) for i in range(n)]
            texts = links.shorten_batch(session, rt.redis, opts, items, "http://sms.test")
    follow(client, texts[0])
    follow(client, texts[0], {"User-Agent": "Slackbot-LinkExpanding 1.0"})
    clicks.consume(rt.sessions, rt.redis, "test")
    usage = t.call("GET", "/api/v1/links/usage", "viewer").json["items"]
    assert usage == [
        {"domain_id": usage[0]["domain_id"], "domain": "s.example", "suffix": None, "links": 2, "clicks": 1,
         "bot_hits": 1},
        {"domain_id": usage[0]["domain_id"], "domain": "s.example", "suffix": "spring", "links": 3, "clicks": 0,
         "bot_hits": 0},
    ]
    with rt.sessions() as session:
        assert clicks.campaign_counts(session, t.ws.id, 1)["clicks"] == 1


# -- isolation: the pattern of tests/api/test_isolation.py for these endpoints --------------------


@pytest.fixture
def pair(client, rt):
    a, b = Tenant(rt, client, "A"), Tenant(rt, client, "B")
    domain = a.call("POST", "/api/v1/links/domains", json={"host": "a.example"}).json["id"]
    link = a.call("POST", "/api/v1/links", json={"target_url": "https://a.example/x"}).json
    ident = follow(client, link["short_url"]).headers["Location"].split("smsc_id=")[1]
    return a, b, {"domain": domain, "link": link["id"], "ident": ident}


FOREIGN_CALLS = [
    ("GET", "/api/v1/links/{link}", None),
    ("GET", "/api/v1/links/domains/{domain}", None),
    ("PATCH", "/api/v1/links/domains/{domain}", {"message_limit": 0}),
    ("DELETE", "/api/v1/links/domains/{domain}", None),
    ("GET", "/api/v1/links/identities/{ident}", None),
    ("POST", "/api/v1/links", {"target_url": "https://b.example", "domain_id": "{domain}"}),
]


@pytest.mark.parametrize(("method", "url", "body"), FOREIGN_CALLS)
def test_other_workspace_gets_404_and_changes_nothing(pair, method, url, body):
    a, b, ids = pair
    if body:
        body = {k: int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v for k, v in body.items()}
    response = b.call(method, url.format(**ids), json=body)
    assert response.status_code == 404, (url, response.json)
    domain = a.call("GET", f"/api/v1/links/domains/{ids['domain']}").json
    assert domain["active"] is True and domain["message_limit"] is None and domain["messages_used"] == 1


@pytest.mark.parametrize("url", ["/api/v1/links", "/api/v1/links/domains", "/api/v1/links/usage"])
def test_listings_show_only_own_rows(pair, url):
    a, b, _ = pair
    key = "items" if url.endswith("usage") else "total"
    assert a.call("GET", url).json[key]
    assert not b.call("GET", url).json[key]


def test_foreign_contact_cannot_own_a_link(pair, client):
    a, b, _ = pair
    contact = a.call("POST", "/api/v1/contacts", json={"phone": "+48600100200"}).json["id"]
    response = b.call("POST", "/api/v1/links", json={"target_url": "https://b.example", "contact_id": contact})
    assert response.status_code == 422
