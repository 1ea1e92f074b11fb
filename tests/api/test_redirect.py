"""The redirect: 302 with one Redis call, 404 page, bot hits, identity transfer, DB fallback, opt-out page."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from sqlalchemy import select, update

from connector import redirect
from core import clicks, db, domains, links, optout
from core.links import LinkOptions, Recipient
from core.models import Click, Consent, ShortLink
from core.models.base import utcnow
from tests.factories import make_contact, make_workspace

BROWSER = {"User-Agent": "Mozilla/5.0 (Linux; Android 14; CUBOT X30) AppleWebKit/537.36 Chrome/120 Mobile"}


def make_link(rt, target="https://shop.example/spring?utm=sms#top", days=1, **kw):
    ws = make_workspace(rt)
    opts = LinkOptions(ws.id, utcnow() + timedelta(days=days), **kw)
    with db.transaction(rt.sessions) as session:
        (text,) = links.shorten_batch(session, rt.redis, opts, [(f"Go {target}", Recipient(42))], "http://sms.test")
    return text.split("http://sms.test")[1]


def stored_clicks(rt):
    clicks.consume(rt.sessions, rt.redis, "test")
    with rt.sessions() as session:
        return session.scalars(select(Click).order_by(Click.id)).all()


def test_redirects_to_the_target_with_identity_on_first_click_only(client, rt):
    path = make_link(rt)
    first = client.get(path, headers=BROWSER)
    assert first.status_code == 302 and first.headers["Cache-Control"] == "private, no-store"
    parts = urlsplit(first.headers["Location"])
    assert (parts.netloc, parts.path, parts.fragment) == ("shop.example", "/spring", "top")
    ident = parse_qs(parts.query)["smsc_id"][0]
    assert parse_qs(parts.query)["utm"] == ["sms"]
    second = client.get(path, headers=BROWSER)
    assert second.headers["Location"] == "https://shop.example/spring?utm=sms#top"
    rows = stored_clicks(rt)
    assert [c.identity_token for c in rows] == [ident, None] and rows[0].contact_id == 42


@pytest.mark.parametrize(("mode", "issued"), [("all", [True, True]), ("never", [False, False])])
def test_identity_on_all_clicks_or_never(client, rt, mode, issued):
    path = make_link(rt, "https://shop.example/", identity_mode=mode)
    got = ["smsc_id=" in client.get(path, headers=BROWSER).headers["Location"] for _ in range(2)]
    assert got == issued


def test_identity_resolves_to_the_contact(client, rt):
    path = make_link(rt, "https://shop.example/")
    ident = client.get(path, headers=BROWSER).headers["Location"].split("smsc_id=")[1]
    with rt.sessions() as session:
        ws_id = session.scalars(select(ShortLink.workspace_id)).one()
        assert clicks.resolve_identity(session, rt.redis, ws_id, ident).contact_id == 42
        stored_clicks(rt)
        rt.redis.delete(clicks.IDENTITY_PREFIX + ident)  # Redis forgot it: the click row still knows
        assert clicks.resolve_identity(session, rt.redis, ws_id, ident).contact_id == 42


PREVIEW_BOTS = [
    "WhatsApp/2.23.20.0", "facebookexternalhit/1.1 Facebot Twitterbot/1.0", "Slackbot-LinkExpanding 1.0",
    "TelegramBot (like TwitterBot)", "Mozilla/5.0 (compatible; Googlebot/2.1)", "LinkedInBot/1.0", "",
    "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Discordbot/2.0",
]


def test_preview_bots_get_the_redirect_but_count_as_bot_hits(client, rt):
    paths = [make_link(rt) for _ in PREVIEW_BOTS]
    for path, agent in zip(paths, PREVIEW_BOTS, strict=True):
        response = client.get(path, headers={"User-Agent": agent})
        assert response.status_code == 302 and "smsc_id" not in response.headers["Location"], agent
        # The bot did not use up the first click: the person's click still gets the identity.
        assert "smsc_id=" in client.get(path, headers=BROWSER).headers["Location"], agent
    assert [c.is_bot for c in stored_clicks(rt)] == [True, False] * len(PREVIEW_BOTS)


@pytest.mark.parametrize("agent", ["curl/8.5.0", BROWSER["User-Agent"]])
def test_real_user_agents_are_clicks_and_head_is_a_bot_hit(client, rt, agent):
    path = make_link(rt)
    assert client.head(path, headers=BROWSER).status_code == 302
    assert client.get(path, headers={"User-Agent": agent}).status_code == 302
    assert [c.is_bot for c in stored_clicks(rt)] == [True, False]


def test_unknown_expired_or_wrong_suffix_is_a_404_page(client, rt):
    path = make_link(rt, suffix="spring")
    suffix, token = path.strip("/").split("/")
    for bad in ["/Zz9Zz9Zz", f"/autumn/{token}", f"/{token}"]:
        response = client.get(bad, headers=BROWSER)
        assert response.status_code == 404 and b"not available" in response.data, bad
    assert client.get(path, headers=BROWSER).status_code == 302
    with db.transaction(rt.sessions) as session:
        session.execute(update(ShortLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    rt.redis.delete(clicks.KEY_PREFIX + token)  # as the key's own expiry would
    assert client.get(path, headers=BROWSER).status_code == 404
    assert len(stored_clicks(rt)) == 1


def test_redis_miss_falls_back_to_the_database_and_rewarms(client, rt):
    path = make_link(rt, "https://shop.example/a")
    token = path.rsplit("/", 1)[1]
    assert client.get(path, headers=BROWSER).headers["Location"].startswith("https://shop.example/a?smsc_id=")
    stored_clicks(rt)
    rt.redis.delete(clicks.KEY_PREFIX + token)
    response = client.get(path, headers=BROWSER)
    assert response.headers["Location"] == "https://shop.example/a"  # still not a first click
    assert rt.redis.hget(clicks.KEY_PREFIX + token, "t") == b"https://shop.example/a"
    assert rt.redis.ttl(clicks.KEY_PREFIX + token) > 0
    assert len(stored_clicks(rt)) == 2


def test_flushed_scripts_are_loaded_again_and_a_dead_redis_still_redirects(client, rt):
    path = make_link(rt, "https://shop.example/a", identity_mode="never")
    rt.redis.script_flush()
    assert client.get(path, headers=BROWSER).headers["Location"] == "https://shop.example/a"
    dead = redirect.Redirector(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2), rt.engine)
    suffix, token = "", path.rsplit("/", 1)[1]
    assert dead.follow(redirect.Hit(token, suffix, "", False, "Mozilla/5.0")) == "https://shop.example/a"
    assert dead.follow(redirect.Hit("Zz9Zz9Zz", suffix, "", False, "Mozilla/5.0")) is None
    assert len(stored_clicks(rt)) == 1  # the hit without Redis is not recorded


def test_link_domain_must_match_the_host(client, rt):
    ws = make_workspace(rt)
    with db.transaction(rt.sessions) as session:
        domains.add_domain(session, ws.id, "s.example", None)
        opts = LinkOptions(ws.id, utcnow() + timedelta(days=1))
        (text,) = links.shorten_batch(session, rt.redis, opts, [("https://t.example", Recipient())], "http://x")
    path = "/" + text.split("/", 3)[3]
    assert text.startswith("https://s.example/")
    assert client.get(path, headers={**BROWSER, "Host": "s.example"}).status_code == 302
    assert client.get(path, headers=BROWSER).status_code == 302  # our own host (tests send localhost)
    assert client.get(path, headers={**BROWSER, "Host": "evil.example:443"}).status_code == 404


def test_app_routes_are_not_taken_for_tokens(client, rt):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/api/openapi.json").status_code == 200
    assert client.post("/Zz9Zz9Zz").status_code in (404, 405)


def test_optout_page_records_the_opt_out(client, rt, settings):
    ws = make_workspace(rt, "Shop")
    contact = make_contact(rt, ws, consents={"marketing": True})
    url = optout.optout_url(settings, ws.id, contact.id, "marketing")
    assert url.startswith("http://sms.test/u/") and len(url) < 50
    path = url.removeprefix("http://sms.test")
    page = client.get(path)
    assert page.status_code == 200 and b"<form method=\"post\">" in page.data and b"Shop" in page.data
    done = client.post(path)
    assert done.status_code == 200 and b"You are unsubscribed" in done.data
    with rt.sessions() as session:
        consent = session.get(Consent, (contact.id, "marketing"))
        assert consent is not None and not consent.opted_in and consent.source == "optout-link"
    assert client.post(path).status_code == 200  # a second press is harmless


@pytest.mark.parametrize("mangle", [lambda p: p[:-1] + "x", lambda p: p.replace("marketing", "sms"),
                                    lambda p: "/u/nonsense", lambda p: p.replace("/u/", "/u/1")])
def test_forged_optout_token_is_404(client, rt, settings, mangle):
    ws = make_workspace(rt)
    contact = make_contact(rt, ws)
    path = optout.optout_url(settings, ws.id, contact.id, "marketing").removeprefix("http://sms.test")
    response = client.post(mangle(path))
    assert response.status_code == 404 and b"not available" in response.data
    with rt.sessions() as session:
        assert session.scalars(select(Consent)).all() == []
