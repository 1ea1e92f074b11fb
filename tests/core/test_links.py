"""Smart links: URL finding, per-recipient shortening, domain pools, and the click stream consumer."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connector import redirect
from core import clicks, db, domains, links, segments
from core.domains import DomainsExhausted
from core.errors import InvalidInput
from core.links import LinkOptions, Recipient
from core.models import Click, LinkDomain, ShortLink
from core.models.base import utcnow
from tests.factories import make_contact, make_workspace

BASE = "http://sms.test"


def options(ws_id: int, **kw: object) -> LinkOptions:
    return LinkOptions(ws_id, utcnow() + timedelta(days=1), **kw)  # type: ignore[arg-type]


def shorten(rt, ws_id, items, **kw):
    with db.transaction(rt.sessions) as session:
        return links.shorten_batch(session, rt.redis, options(ws_id, **kw), items, BASE)


def add_domains(rt, ws_id, *specs):
    with db.transaction(rt.sessions) as session:
        return [domains.add_domain(session, ws_id, host, limit).id for host, limit in specs]


def hit(rt, text, agent="Mozilla/5.0 (iPhone)"):
    token = text.rsplit("/", 1)[1][: links.TOKEN_LENGTH]
    suffix = text.rsplit("/", 2)[1] if text.count("/") > 3 else ""
    bot = redirect.is_bot("GET", agent)
    return redirect.Redirector(rt.redis, rt.engine).follow(redirect.Hit(token, suffix, "", bot, agent))


# -- finding URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "urls"), [
    ("Sale at shop.example.com and www.shop.pl today", []),
    ("See https://a.example/x.", ["https://a.example/x"]),
    ("Go: http://a.example/x?y=1, now!", ["http://a.example/x?y=1"]),
    ("(https://a.example/x) or https://b.example?", ["https://a.example/x", "https://b.example"]),
    ("Wiki https://en.wikipedia.org/wiki/Foo_(bar)!", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
    ("Two: HTTPS://A.example/1 https://b.example/2#top", ["HTTPS://A.example/1", "https://b.example/2#top"]),
    ("Broken https:// alone", []),
])
def test_find_urls_takes_only_protocol_urls_without_trailing_punctuation(text, urls):
    assert [url for _, _, url in links.find_urls(text)] == urls


def test_shorten_keeps_text_without_protocol_and_punctuation():
    tokens = iter(["Tok00001", "Tok00002"])
    text, new = links.shorten("Visit shop.pl or https://shop.pl/a?b=1. Bye", f"{BASE}/s", tokens, Recipient(7), 3)
    assert text == f"Visit shop.pl or {BASE}/s/Tok00001. Bye"
    assert new == [links.NewLink("Tok00001", 3, "https://shop.pl/a?b=1", 7, None, None)]
    assert links.shorten("no links here", BASE, tokens, Recipient(), None) == ("no links here", [])


@pytest.mark.parametrize("url", ["https://", "https://exa mple.com", "https://no_tld/", "ftp-ish://x.com",
                                 "https://x.com/\x00", "https://-bad-.com/", "ftp://localhost/x",
                                 "https://x.com:99999/"])
def test_invalid_target_urls_are_refused_naming_the_field(url):
    with pytest.raises(InvalidInput) as caught:
        links.check_url(url, "target_url")
    assert caught.value.field == "target_url"


def test_unicode_target_becomes_ascii():
    assert links.check_url("https://żółw.pl/ścieżka?q=ł") == "https://xn--w-uga1v8h.pl/%C5%9Bcie%C5%BCka?q=%C5%82"


@pytest.mark.parametrize("suffix", ["spring-sale", "A_1", "x" * 40])
def test_valid_suffixes(suffix):
    assert links.check_suffix(suffix) == suffix


@pytest.mark.parametrize("suffix", ["x" * 41, "spring sale", "a/b", "zniżka", "api", "u", "a.b"])
def test_bad_suffixes_are_refused(suffix):
    with pytest.raises(InvalidInput, match="suffix"):
        links.check_suffix(suffix)


def test_tokens_are_base62_and_distinct():
    tokens = links.new_tokens(20000)
    assert len(set(tokens)) == 20000
    assert all(len(t) == links.TOKEN_LENGTH and t.isalnum() and t.isascii() for t in tokens)


# -- batches --------------------------------------------------------------------------------------


def test_batch_gives_each_recipient_its_own_token_and_stores_links(rt):
    ws = make_workspace(rt)
    items = [(f"Hi {i}: https://shop.example/spring and https://shop.example/terms", Recipient(contact_id=i))
             for i in range(1, 51)] + [("no link", Recipient(contact_id=99))]
    texts = shorten(rt, ws.id, items, suffix="spring", campaign_id=5)
    assert texts[-1] == "no link"
    tokens = [part.split(" ")[0] for text in texts[:-1] for part in text.split(f"{BASE}/spring/")[1:]]
    assert len(tokens) == len(set(tokens)) == 100
    with rt.sessions() as session:
        rows = session.scalars(select(ShortLink).order_by(ShortLink.contact_id)).all()
    assert len(rows) == 100 and {r.campaign_id for r in rows} == {5} and {r.suffix for r in rows} == {"spring"}
    assert rt.redis.hget(clicks.KEY_PREFIX + tokens[0], "t") == b"https://shop.example/spring"
    assert 0 < rt.redis.ttl(clicks.KEY_PREFIX + tokens[0]) <= 86400


def test_optout_links_are_not_shortened(rt, settings):
    from core import optout

    ws = make_workspace(rt)
    stop = optout.optout_url(settings, ws.id, 7, "marketing")
    add_domains(rt, ws.id, ("s.example", 1))
    items = [(f"Sale https://a.example! Stop: {stop}", Recipient(7)), (f"Stop: {stop}", Recipient(8))]
    texts = shorten(rt, ws.id, items)
    assert texts[0].endswith(f"Stop: {stop}") and "https://a.example" not in texts[0]
    assert texts[1] == f"Stop: {stop}"  # and it took no room on the domain (its limit is 1)


def test_redis_holds_a_link_for_its_expiry_or_the_hot_window(rt):
    ws = make_workspace(rt)
    with db.transaction(rt.sessions) as session:
        opts = LinkOptions(ws.id, utcnow() + timedelta(days=90))
        (text,) = links.shorten_batch(session, rt.redis, opts, [("https://a.example", Recipient())], BASE)
    ttl = rt.redis.ttl(clicks.KEY_PREFIX + text.rsplit("/", 1)[1])
    assert clicks.HOT_DAYS * 86400 - 60 < ttl <= clicks.HOT_DAYS * 86400


def test_invalid_url_in_a_batch_stores_nothing(rt):
    ws = make_workspace(rt)
    with pytest.raises(InvalidInput, match="text"):
        shorten(rt, ws.id, [("ok https://a.example", Recipient()), ("bad https://exa_mple/x", Recipient())])
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ShortLink)) == 0


def test_expiry_defaults_to_workspace_setting(rt):
    ws = make_workspace(rt)
    assert links.default_expiry(ws) - utcnow() > timedelta(days=89)
    ws.settings = {"link_expiry_days": 7}
    assert timedelta(days=6) < links.default_expiry(ws) - utcnow() <= timedelta(days=7)
    ws.settings = {"link_expiry_days": "soon"}
    assert links.default_expiry(ws) - utcnow() > timedelta(days=89)


# -- domain pools ---------------------------------------------------------------------------------


def test_links_spread_over_least_used_domains(rt):
    ws = make_workspace(rt)
    a, b, c = add_domains(rt, ws.id, ("a.example", None), ("b.example", 100), ("c.example", 10))
    with db.transaction(rt.sessions) as session:
        session.get(LinkDomain, a).messages_used = 30
    texts = shorten(rt, ws.id, [("https://t.example/x", Recipient())] * 40)
    hosts = [t.split("/")[2] for t in texts]
    with rt.sessions() as session:
        used = {d.host: d.messages_used for d in session.scalars(select(LinkDomain))}
    # c fills to its limit of 10; a (30 used) and b level up: 30 + 30 + 10 = 40 + 30.
    assert used == {"a.example": 30, "b.example": 30, "c.example": 10}
    assert hosts.count("b.example") == 30 and hosts.count("c.example") == 10
    assert all(t.startswith("https://") for t in texts)


def test_every_domain_full_raises_domains_exhausted_with_the_reason(rt):
    ws = make_workspace(rt)
    add_domains(rt, ws.id, ("a.example", 2), ("b.example", 1))
    shorten(rt, ws.id, [("https://t.example", Recipient())] * 2)
    with pytest.raises(DomainsExhausted, match="messaging limit") as caught:
        shorten(rt, ws.id, [("https://t.example", Recipient())] * 2)
    assert "a.example" in str(caught.value)
    shorten(rt, ws.id, [("https://t.example", Recipient())])  # the last free message still fits
    with rt.sessions() as session:
        assert session.scalar(select(func.sum(LinkDomain.messages_used))) == 3


def test_deactivated_pool_is_exhausted_but_no_pool_uses_own_url(rt):
    ws = make_workspace(rt)
    assert shorten(rt, ws.id, [("https://t.example", Recipient())])[0].startswith(f"{BASE}/")
    (domain_id,) = add_domains(rt, ws.id, ("a.example", None))
    with db.transaction(rt.sessions) as session:
        domains.update_domain(session, ws.id, domain_id, {"active": False})
    with pytest.raises(DomainsExhausted, match="deactivated"):
        shorten(rt, ws.id, [("https://t.example", Recipient())])


def test_limit_holds_when_two_workers_allocate_at_once(rt):
    ws = make_workspace(rt)
    add_domains(rt, ws.id, ("a.example", 50), ("b.example", 50))
    results: list[int] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        barrier.wait()
        for _ in range(8):
            try:
                with db.transaction(rt.sessions) as session:
                    got = links.allocate(session, ws.id, 7)
                results.append(sum(n for _, n in got))
            except DomainsExhausted:
                results.append(0)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with rt.sessions() as session:
        used = session.scalar(select(func.sum(LinkDomain.messages_used)))
    assert sum(results) == used == 98  # 14 batches of 7 fit in 100, the 15th and 16th do not
    assert results.count(0) == 2


# -- the click stream -----------------------------------------------------------------------------


def test_click_is_stored_once_even_if_the_consumer_runs_twice(rt):
    ws = make_workspace(rt)
    (text,) = shorten(rt, ws.id, [("https://t.example", Recipient(contact_id=3, message_id=4, variant_id=5))],
                      campaign_id=9)
    ident = hit(rt, text).split("smsc_id=")[1]
    assert rt.redis.xrange(clicks.CLICK_STREAM)[0][1][b"h"].decode().split("\t")[2] == ident
    assert clicks.consume(rt.sessions, rt.redis, "w1") == 1
    assert clicks.consume(rt.sessions, rt.redis, "w2") == 0
    with rt.sessions() as session:
        (click,) = session.scalars(select(Click)).all()
    assert (click.contact_id, click.message_id, click.variant_id, click.campaign_id) == (3, 4, 5, 9)
    assert not click.is_bot and click.identity_token and rt.redis.xlen(clicks.CLICK_STREAM) == 0


def test_batch_replayed_after_a_crash_between_commit_and_ack_counts_once(rt):
    ws = make_workspace(rt)
    (text,) = shorten(rt, ws.id, [("https://t.example", Recipient(contact_id=3))])
    for _ in range(3):
        hit(rt, text)
    clicks.ensure_group(rt.redis)
    # Worker "dead" reads the entries and commits them, then dies before XACK.
    entries = rt.redis.xreadgroup(clicks.CLICK_GROUP, "dead", {clicks.CLICK_STREAM: ">"})[0][1]
    with db.transaction(rt.sessions) as session:
        assert clicks.store(session, entries) == 3
    assert clicks.consume(rt.sessions, rt.redis, "alive") == 0  # not idle long enough to claim yet
    assert clicks.consume(rt.sessions, rt.redis, "alive", claim_idle_ms=0) == 3  # claimed and replayed
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Click)) == 3
    assert rt.redis.xpending(clicks.CLICK_STREAM, clicks.CLICK_GROUP)["pending"] == 0


def test_hits_wait_in_the_stream_while_no_worker_runs(rt, run_jobs):
    ws = make_workspace(rt)
    (text,) = shorten(rt, ws.id, [("https://t.example", Recipient())])
    hit(rt, text)
    hit(rt, text, agent="WhatsApp/2.23.20")
    assert clicks.pending(rt.redis) == 2
    from core import jobs

    assert jobs.consume_clicks() == 2
    with rt.sessions() as session:
        assert sorted(c.is_bot for c in session.scalars(select(Click))) == [False, True]


def test_clicked_segment_condition(rt):
    ws = make_workspace(rt)
    alice, bob = make_contact(rt, ws, "+48600100201"), make_contact(rt, ws, "+48600100202")
    texts = shorten(rt, ws.id, [("https://t.example", Recipient(alice.id)), ("https://t.example", Recipient(bob.id))],
                    campaign_id=1, suffix="spring")
    hit(rt, texts[0])
    hit(rt, texts[1], agent="facebookexternalhit/1.1 Facebot Twitterbot/1.0")  # an iMessage preview
    clicks.consume(rt.sessions, rt.redis, "w")
    with rt.sessions() as session:
        for cond, expected in [({"clicked": 1}, 1), ({"clicked": 2}, 0), ({"clicked": True}, 1),
                               ({"clicked": {"suffix": "spring"}}, 1), ({"clicked": {"suffix": "x"}}, 0),
                               ({"not": {"clicked": {"campaign": 1}}}, 1)]:
            assert segments.count_matching(session, ws.id, cond) == expected, cond
        with pytest.raises(InvalidInput, match="clicked"):
            segments.count_matching(session, ws.id, {"clicked": {"campain": 1}})
