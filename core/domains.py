"""Short-link domain pool: a workspace's link domains, their messaging limits, and taking room on them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput, NotFound
from core.models import LinkDomain

ALLOCATE_ATTEMPTS = 5  # re-reads of the domain pool after losing a race to another worker

# A DNS host name: labels of 1..63 letters, digits or inner `-`, 253 characters in all (also used by links).
HOST_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


class DomainsExhausted(Conflict):
    """Every short-link domain of the workspace is at its messaging limit (the campaign is suspended)."""


class _Raced(Exception):
    """Another worker took a domain's room between our read and our update."""


def check_host(host: str, name: str = "host") -> str:
    host = (host or "").strip().lower().rstrip(".")
    if not HOST_NAME.fullmatch(host) or "." not in host:
        raise InvalidInput(name, f"{host!r} is not a host name like s.example.com", host)
    return host


def _spread(used: Sequence[int], rooms: Sequence[int], n: int) -> list[int]:
    """Water-filling: gives the `n` messages to the least-used domains first, levelling their counts."""
    def fill(level: int) -> list[int]:
        return [max(0, min(level - u, r)) for u, r in zip(used, rooms, strict=True)]

    lo, hi = min(used), max(used) + n
    while lo < hi:  # the lowest level that holds n
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if sum(fill(mid)) >= n else (mid + 1, hi)
    counts, upper = fill(lo - 1), fill(lo)
    extra = n - sum(counts)
    for i in range(len(counts)):
        if extra and upper[i] > counts[i]:
            counts[i] += 1
            extra -= 1
    return counts


def allocate(session: Session, workspace_id: int, n: int) -> list[tuple[LinkDomain | None, int]]:
    """Reserves room for `n` messages on the least-used active domains: [(domain, messages), ...].

    A workspace without domains uses the installation's own URL (domain None). The counts hold across
    workers: each domain's share is taken by `UPDATE ... WHERE messages_used + k <= message_limit`, and
    a lost race re-reads the pool. Raises DomainsExhausted, naming the reason, when the room is short.
    """
    for _attempt in range(ALLOCATE_ATTEMPTS):
        pool = session.scalars(
            select(LinkDomain).where(LinkDomain.workspace_id == workspace_id, LinkDomain.active.is_(True))
            .order_by(LinkDomain.messages_used, LinkDomain.id).execution_options(populate_existing=True)
        ).all()
        if not pool:
            if session.scalar(select(LinkDomain.id).where(LinkDomain.workspace_id == workspace_id).limit(1)):
                raise DomainsExhausted("no active short-link domain: every domain of the workspace is deactivated")
            return [(None, n)]
        rooms = [n if d.message_limit is None else max(0, d.message_limit - d.messages_used) for d in pool]
        if sum(rooms) < n:
            hosts = ", ".join(f"{d.host} ({d.messages_used}/{d.message_limit})" for d in pool)
            raise DomainsExhausted(f"every short-link domain is at its messaging limit: {n} messages need "
                                   f"links but only {sum(rooms)} fit ({hosts}); add a domain or raise a limit")
        counts = _spread([d.messages_used for d in pool], rooms, n)
        try:
            with session.begin_nested():  # rows locked in id order, so two workers never wait on each other
                for domain, k in sorted(zip(pool, counts, strict=True), key=lambda pair: pair[0].id):
                    if k:
                        _take(session, domain, k)
        except _Raced:
            continue
        return [(d, k) for d, k in zip(pool, counts, strict=True) if k]
    raise DomainsExhausted(f"short-link domains are contended: no room found in {ALLOCATE_ATTEMPTS} attempts")


def reserve(session: Session, workspace_id: int, domain_id: int, n: int) -> LinkDomain:
    """Reserves room for `n` messages on one given domain of the workspace."""
    domain = get_domain(session, workspace_id, domain_id)
    if not domain.active:
        raise DomainsExhausted(f"short-link domain {domain.host} is deactivated")
    try:
        with session.begin_nested():
            _take(session, domain, n)
    except _Raced:
        raise DomainsExhausted(f"short-link domain {domain.host} is at its messaging limit "
                               f"({domain.message_limit})") from None
    return domain


def _take(session: Session, domain: LinkDomain, k: int) -> None:
    room = or_(LinkDomain.message_limit.is_(None), LinkDomain.messages_used + k <= LinkDomain.message_limit)
    result = session.execute(
        update(LinkDomain).where(LinkDomain.id == domain.id, LinkDomain.active.is_(True), room)
        .values(messages_used=LinkDomain.messages_used + k).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise _Raced(domain.host)
    session.expire(domain, ["messages_used"])


def get_domain(session: Session, workspace_id: int, domain_id: int) -> LinkDomain:
    domain = session.get(LinkDomain, domain_id)
    if domain is None or domain.workspace_id != workspace_id:
        raise NotFound(f"short-link domain {domain_id} not found")
    return domain


def add_domain(session: Session, workspace_id: int, host: str, message_limit: int | None = None,
               scheme: str = "https") -> LinkDomain:
    host = check_host(host)
    if scheme not in ("https", "http"):
        raise InvalidInput("scheme", "must be https or http", scheme)
    if message_limit is not None and message_limit < 0:
        raise InvalidInput("message_limit", "must be 0 or more (leave it out for no limit)", message_limit)
    taken = select(LinkDomain.id).where(LinkDomain.workspace_id == workspace_id, LinkDomain.host == host)
    if session.scalar(taken) is not None:
        raise Conflict(f"short-link domain {host} already exists in this workspace")
    domain = LinkDomain(workspace_id=workspace_id, host=host, scheme=scheme, message_limit=message_limit,
                        messages_used=0, active=True)
    session.add(domain)
    session.flush()
    return domain


def update_domain(session: Session, workspace_id: int, domain_id: int, changes: Mapping[str, Any]) -> LinkDomain:
    """Changes a domain's limit (None = unlimited) or active flag; a deactivated domain gets no new links
    but its existing links keep working."""
    domain = get_domain(session, workspace_id, domain_id)
    if "message_limit" in changes:
        limit = changes["message_limit"]
        if limit is not None and limit < 0:
            raise InvalidInput("message_limit", "must be 0 or more (null for no limit)", limit)
        domain.message_limit = limit
    if "active" in changes:
        domain.active = bool(changes["active"])
    session.flush()
    return domain
