"""Clicks: the Redis token map the redirect reads, the stream consumer that moves hits into the database,
click counts, and the "clicked" segment condition.

A redirect (connector/redirect.py) costs one EVALSHA that reads the token's hash and XADDs the hit to
`CLICK_STREAM`. Workers move the stream into `clicks` with a consumer group: rows are inserted with ON
CONFLICT DO NOTHING on the stream entry id, committed, and only then acknowledged. So a stopped worker
loses nothing (entries wait in the stream) and a worker that dies after its commit but before XACK counts
nothing twice (another worker claims the entries with XAUTOCLAIM and the insert skips them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import ColumnElement, case, exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from core import db, segments
from core.errors import InvalidInput, NotFound
from core.models import Click, Contact, LinkDomain, ShortLink
from core.models.base import as_utc, utcnow

log = logging.getLogger(__name__)

KEY_PREFIX = "smsc:link:"  # + token → hash {t: target, h: host, m: identity mode f|a|n, s: suffix, n: clicks}
CLICK_STREAM = "smsc:clicks"
CLICK_GROUP = "clicks"
IDENTITY_PREFIX = "smsc:ident:"  # + identity id → token of the link whose click issued it
IDENTITY_PARAM = "smsc_id"
IDENTITY_TTL_S = 30 * 86400  # the landing site may resolve an identity id this long (then from the DB)
# Links stay in Redis this long at most; most clicks come in the first days, and an older link's click
# reads the database once and puts the link back. 90-day links would hold 3x the memory (~200 B a link).
HOT_DAYS = 30
NEGATIVE_TTL_S = 300  # an unknown or expired token is remembered this long, sparing the database
USER_AGENT_CHARS = 255
CONSUME_BATCH = 1000  # stream entries per database transaction
CLAIM_IDLE_MS = 60_000  # a pending entry untouched this long belonged to a dead worker: claim it
CONSUME_LIMIT = 200_000  # entries per job run, so a backlog is moved in short jobs
FORGET_IDLE_MS = 3_600_000  # a consumer name idle this long with nothing pending is removed
MODE_CODES = {"first": "f", "all": "a", "never": "n"}

# KEYS: none. The link hashes (smsc:link:<token>) are named inside: passing 1,000 keys through redis-py
#       costs ~10 µs each in argument packing, so the script is for a single Redis, never a cluster.
# ARGV[1]: expiry as a Unix time in ms; ARGV[2]: identity mode code (f|a|n); ARGV[3]: suffix ('' = none);
# ARGV[4]: the links, one "token<TAB>target<TAB>host<LF>" line each (URLs hold no blanks, hosts may be '');
# ARGV[5]: the key prefix (smsc:link:)
# Returns the number of links written; a token that is already live is left alone (a collision).
WARM_LINKS = """
local n = 0
for token, target, host in string.gmatch(ARGV[4], '([^\\t]+)\\t([^\\t]+)\\t([^\\n]*)\\n') do
  local key = ARGV[5] .. token
  local live = redis.call('HGET', key, 't')
  if not live or live == '' then
    redis.call('HSET', key, 't', target, 'h', host, 'm', ARGV[2], 's', ARGV[3])
    redis.call('PEXPIREAT', key, ARGV[1])
    n = n + 1
  end
end
return n
"""
WARM_CHUNK = 1000  # links per WARM_LINKS call


# -- the token map --------------------------------------------------------------------------------


def redis_expiry_ms(expires_at: datetime) -> int:
    """When a link leaves Redis: at its expiry, or after the hot window if that comes first."""
    return int(min(as_utc(expires_at), utcnow() + timedelta(days=HOT_DAYS)).timestamp() * 1000)


def warm(client: Any, token: str, target: str, mode: str, host: str, suffix: str | None,
         expires_at: datetime, clicks: int = 0) -> None:
    """Puts one link in Redis (client may be a pipeline) for its expiry or the hot window."""
    key = KEY_PREFIX + token
    fields: dict[str, str | int] = {"t": target, "h": host, "m": MODE_CODES[mode], "s": suffix or ""}
    if clicks:
        fields["n"] = clicks  # keeps "first click only" true after Redis lost the key
    client.hset(key, mapping=fields)
    client.pexpireat(key, redis_expiry_ms(expires_at))


def warm_many(client: redis.Redis, links: Sequence[tuple[str, str, str]], mode: str, suffix: str | None,
              expires_at: datetime) -> None:
    """Puts a batch of (token, target, host) in Redis: one script call per 1,000 links, one round trip."""
    script = client.register_script(WARM_LINKS)
    head: list[Any] = [redis_expiry_ms(expires_at), MODE_CODES[mode], suffix or ""]
    pipe = client.pipeline(transaction=False)
    for i in range(0, len(links), WARM_CHUNK):
        lines = "".join([f"{token}\t{target}\t{host}\n" for token, target, host in links[i : i + WARM_CHUNK]])
        script(keys=[], args=[*head, lines, KEY_PREFIX], client=pipe)
    pipe.execute()


class Warming(threading.Thread):
    """`warm_many` in a thread, so Redis fills while the caller writes the database; `wait` re-raises."""

    def __init__(self, client: redis.Redis, links: Sequence[tuple[str, str, str]], mode: str, suffix: str | None,
                 expires_at: datetime) -> None:
        super().__init__(daemon=True)
        self.work = (client, links, mode, suffix, expires_at)
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            warm_many(*self.work)
        except BaseException as exc:  # noqa: BLE001 (handed to the caller in wait)
            self.error = exc

    def wait(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


# -- the consumer ---------------------------------------------------------------------------------


def ensure_group(client: redis.Redis) -> None:
    """Creates the consumer group from the stream's start, so hits recorded before any worker count."""
    try:
        client.xgroup_create(CLICK_STREAM, CLICK_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def consume(sessions: sessionmaker[Session], client: redis.Redis, consumer: str,
            claim_idle_ms: int = CLAIM_IDLE_MS, batch: int = CONSUME_BATCH, limit: int = CONSUME_LIMIT) -> int:
    """Moves waiting hits from the stream into `clicks`; returns how many entries it handled.

    First claims entries a dead worker left pending for `claim_idle_ms`, then reads new ones, stopping
    after about `limit` entries so one job stays short (the next run goes on).
    """
    ensure_group(client)
    done = 0
    start = "0-0"
    while done < limit:
        reply = client.xautoclaim(CLICK_STREAM, CLICK_GROUP, consumer, claim_idle_ms, start, count=batch)
        start, entries = reply[0], reply[1]
        done += _settle(sessions, client, entries)
        if start in (b"0-0", "0-0"):
            break
    while done < limit:
        reply = client.xreadgroup(CLICK_GROUP, consumer, {CLICK_STREAM: ">"}, count=batch)
        entries = reply[0][1] if reply else []
        if not entries:
            break
        done += _settle(sessions, client, entries)
    _forget_idle_consumers(client)
    return done


def _forget_idle_consumers(client: redis.Redis) -> None:
    """Each worker process is a consumer; drop the names of gone ones that hold nothing."""
    for info in client.xinfo_consumers(CLICK_STREAM, CLICK_GROUP):
        if info["pending"] == 0 and info["idle"] > FORGET_IDLE_MS:
            client.xgroup_delconsumer(CLICK_STREAM, CLICK_GROUP, info["name"])


def _settle(sessions: sessionmaker[Session], client: redis.Redis, entries: Sequence[Any]) -> int:
    """Inserts one batch, commits, and only then acknowledges (and deletes) the entries."""
    entries = [(entry_id, fields) for entry_id, fields in entries if fields]  # 6.2: nil for deleted ids
    if not entries:
        return 0
    with db.transaction(sessions) as session:
        store(session, entries)
    ids = [entry_id for entry_id, _ in entries]
    pipe = client.pipeline(transaction=False)
    pipe.xack(CLICK_STREAM, CLICK_GROUP, *ids)
    pipe.xdel(CLICK_STREAM, *ids)
    pipe.execute()
    return len(entries)


def store(session: Session, entries: Sequence[tuple[Any, Mapping[bytes, bytes]]]) -> int:
    """Inserts stream entries as clicks; an entry already stored (same stream id) is skipped."""
    hits = []
    for entry_id, fields in entries:  # h = "token<TAB>bot<TAB>identity id<TAB>user agent"
        token, bot, ident, agent = (_text(fields.get(b"h", b"")).split("\t", 3) + ["", "", ""])[:4]
        hits.append((_text(entry_id), token, bot == "1", ident or None, agent or None))
    links = {row.token: row for row in session.execute(
        select(ShortLink.id, ShortLink.token, ShortLink.workspace_id, ShortLink.contact_id, ShortLink.campaign_id,
               ShortLink.message_id, ShortLink.variant_id).where(ShortLink.token.in_({hit[1] for hit in hits}))
    )}
    rows = []
    for stream_id, token, bot, ident, agent in hits:
        link = links.get(token)
        if link is None:  # a link whose batch rolled back after it reached Redis: nobody got it
            log.warning("click %s on unknown token %r dropped", stream_id, token)
            continue
        rows.append({
            "workspace_id": link.workspace_id, "link_id": link.id, "contact_id": link.contact_id,
            "campaign_id": link.campaign_id, "message_id": link.message_id, "variant_id": link.variant_id,
            "at": datetime.fromtimestamp(int(stream_id.split("-")[0]) / 1000, UTC), "user_agent": agent,
            "is_bot": bot, "identity_token": ident, "stream_id": stream_id,
        })
    if rows:
        insert = db.insert_for(session)
        session.execute(insert(Click.__table__).on_conflict_do_nothing(index_elements=["stream_id"]), rows)
        _write_back(session, [r for r in rows if not r["is_bot"] and r["contact_id"] is not None])
    return len(rows)


def _write_back(session: Session, clicks: list[dict[str, Any]]) -> None:
    """Human clicks reach connected CRMs as activities (one per message: the outbox key de-duplicates)."""
    from core.models import Message
    from core.plugins import outbox

    connected = {ws for ws in {c["workspace_id"] for c in clicks} if outbox.active_connections(session, ws)}
    for click in (c for c in clicks if c["workspace_id"] in connected):
        message_id = click["message_id"] or session.scalar(select(Message.id).where(
            Message.campaign_id == click["campaign_id"], Message.contact_id == click["contact_id"]).limit(1)) \
            if click["campaign_id"] is not None else click["message_id"]
        if message_id is not None:
            outbox.note_click(session, click["workspace_id"], message_id, click["at"])


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def pending(client: redis.Redis) -> int:
    """Hits in the stream not yet stored (new plus claimed-but-unacknowledged)."""
    return int(client.xlen(CLICK_STREAM))


# -- identities -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    link_id: int
    contact_id: int | None
    campaign_id: int | None
    message_id: int | None


def resolve_identity(session: Session, client: redis.Redis, workspace_id: int, ident: str) -> Identity:
    """Who clicked: the contact behind an `smsc_id` value the landing site received."""
    token = client.get(IDENTITY_PREFIX + ident)
    query = select(ShortLink).where(ShortLink.workspace_id == workspace_id)
    if token is not None:
        link = session.scalar(query.where(ShortLink.token == _text(token)))
    else:
        link = session.scalar(query.join(Click, Click.link_id == ShortLink.id).where(
            Click.identity_token == ident, Click.workspace_id == workspace_id).limit(1))
    if link is None:
        raise NotFound(f"identity {ident!r} not found")
    return Identity(link.id, link.contact_id, link.campaign_id, link.message_id)


# -- counts ---------------------------------------------------------------------------------------


def _tally(where: Sequence[ColumnElement[bool]]) -> Any:
    human = Click.is_bot.is_(False)
    return select(
        func.count(case((human, Click.id))).label("clicks"),
        func.count(func.distinct(case((human, Click.contact_id)))).label("unique_clickers"),
        func.count(case((Click.is_bot.is_(True), Click.id))).label("bot_hits"),
        func.min(case((human, Click.at))).label("first_click_at"),
        func.max(case((human, Click.at))).label("last_click_at"),
    ).where(*where)


def campaign_counts(session: Session, workspace_id: int, campaign_id: int) -> dict[str, Any]:
    """Clicks of a campaign: human clicks, distinct contacts who clicked, and bot hits kept apart."""
    row = session.execute(_tally([Click.workspace_id == workspace_id, Click.campaign_id == campaign_id])).one()
    return dict(row._mapping)


def link_counts(session: Session, link_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Counts per link id; links without a hit are left out."""
    if not link_ids:
        return {}
    query = _tally([Click.link_id.in_(link_ids)]).add_columns(Click.link_id).group_by(Click.link_id)
    return {row.link_id: {k: v for k, v in row._mapping.items() if k != "link_id"}
            for row in session.execute(query)}


def usage(session: Session, workspace_id: int) -> list[dict[str, Any]]:
    """Domains and custom suffixes in use, each with its link count, clicks and bot hits."""
    key = (ShortLink.domain_id, ShortLink.suffix)
    links = session.execute(select(*key, func.count()).where(ShortLink.workspace_id == workspace_id).group_by(*key))
    human = Click.is_bot.is_(False)
    hits = session.execute(
        select(*key, func.count(case((human, Click.id))), func.count(case((Click.is_bot.is_(True), Click.id))))
        .join(Click, Click.link_id == ShortLink.id).where(ShortLink.workspace_id == workspace_id).group_by(*key)
    )
    domains = select(LinkDomain.id, LinkDomain.host).where(LinkDomain.workspace_id == workspace_id)
    hosts = {domain_id: host for domain_id, host in session.execute(domains)}
    found: dict[tuple[int | None, str | None], dict[str, Any]] = {}
    for domain_id, suffix, n in links:
        found[(domain_id, suffix)] = {"domain_id": domain_id, "domain": hosts.get(domain_id), "suffix": suffix,
                                      "links": n, "clicks": 0, "bot_hits": 0}
    for domain_id, suffix, human_n, bot_n in hits:
        found[(domain_id, suffix)].update(clicks=human_n, bot_hits=bot_n)
    return sorted(found.values(), key=lambda item: (item["domain"] or "", item["suffix"] or ""))


# -- segment condition "clicked" ------------------------------------------------------------------


def _clicked(cond: Mapping[str, Any], ctx: segments.FilterContext) -> ColumnElement[bool]:
    """`{"clicked": {"campaign": 12, "suffix": "spring-sale"}}`, `{"clicked": 12}` or `{"clicked": true}`:
    contacts with a human click (bot hits never count), optionally in that campaign / on that suffix."""
    spec = cond["clicked"]
    if spec is True:
        spec = {}
    elif isinstance(spec, int) and not isinstance(spec, bool):
        spec = {"campaign": spec}
    if not isinstance(spec, Mapping) or set(spec) - {"campaign", "suffix"}:
        raise InvalidInput(ctx.path, 'must be true, a campaign id, or {"campaign": id, "suffix": "..."}', spec)
    query = select(Click.id).where(Click.contact_id == Contact.id, Click.workspace_id == ctx.workspace_id,
                                   Click.is_bot.is_(False))
    if spec.get("campaign") is not None:
        if not isinstance(spec["campaign"], int) or isinstance(spec["campaign"], bool):
            raise InvalidInput(f"{ctx.path}.campaign", "must be a campaign id", spec["campaign"])
        query = query.where(Click.campaign_id == spec["campaign"])
    if spec.get("suffix") is not None:
        if not isinstance(spec["suffix"], str):
            raise InvalidInput(f"{ctx.path}.suffix", "must be a link suffix", spec["suffix"])
        query = query.join(ShortLink, ShortLink.id == Click.link_id).where(ShortLink.suffix == spec["suffix"])
    return exists(query)


segments.register_condition("clicked", _clicked)
