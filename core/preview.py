"""Message previews: the rendered text, its analysis, highlights, GSM suggestions and the estimated cost;
and the same over a whole audience (exact up to 100,000 recipients, sampled beyond)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audience, encoding, links, render
from core.errors import InvalidInput
from core.models import Campaign, CampaignVariant, Contact, LinkDomain
from core.pricing import PriceBook

EXACT_LIMIT = 100_000  # recipients analysed one by one; beyond this a uniform sample of this size
MAX_TEXT = 10_000  # characters


def check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text", "must not be empty", text)
    if len(text) > MAX_TEXT:
        raise InvalidInput("text", f"longer than {MAX_TEXT} characters ({len(text)})", len(text))
    if "\x00" in text:
        raise InvalidInput("text", "must not contain NUL bytes", text[:40])
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise InvalidInput("text", "contains a lone surrogate (broken Unicode)", text[:40])
    return text


def compile_text(text: str, field: str = "text") -> render.Template:
    try:
        return render.compile_template(check_text(text))
    except render.RenderError as exc:
        raise InvalidInput(field, str(exc), text[:80]) from None


def sample_link(session: Session, workspace_id: int, default_base: str, suffix: str | None) -> str:
    """A short link as long as the real ones will be (least-used domain, suffix, token length)."""
    domain = session.scalars(select(LinkDomain).where(LinkDomain.workspace_id == workspace_id,
                                                      LinkDomain.active.is_(True))
                             .order_by(LinkDomain.messages_used).limit(1)).first()
    return f"{links.base_url(domain, default_base, links.check_suffix(suffix))}/{'x' * links.TOKEN_LENGTH}"


def shorten_for_preview(text: str, link: str) -> str:
    out, last = [], 0
    for start, end, _url in links.find_urls(text):
        out += [text[last:start], link]
        last = end
    return "".join(out) + text[last:]


def price_book(session: Session, workspace_id: int) -> PriceBook | None:
    from core import provider_accounts

    account = provider_accounts.get_default(session, workspace_id)
    return PriceBook.load(session, workspace_id, account.provider) if account else None


def preview(session: Session, workspace_id: int, text: str, variables: Mapping[str, Any], phone: str | None,
            max_parts: int, link: str | None, book: PriceBook | None) -> dict[str, Any]:
    """One message as the recipient would get it."""
    template = compile_text(text)
    try:
        rendered, missing = template.render(variables), []
    except render.MissingVariable as exc:
        rendered, missing = "", list(exc.names)
    if link:
        rendered = shorten_for_preview(rendered, link)
    analysis = encoding.analyze(rendered)
    suggestion = encoding.suggest_gsm(rendered) if not missing else None
    price = book.price_for(phone) if (book and phone) else None
    return {
        "text": rendered, "analysis": analysis.to_dict(),
        "highlights": {"unicode": [list(p) for p in analysis.unicode_chars],
                       "extended": [list(p) for p in analysis.extended_chars]},
        "suggestion": suggestion.to_dict() if suggestion else None,
        "status": "enqueue_failed" if missing or analysis.parts > max_parts else "ok",
        "reason": (f"missing variables without a default: {', '.join(missing)}" if missing else
                   f"{analysis.parts} parts, over max_parts {max_parts}" if analysis.parts > max_parts else None),
        "cost": None if price is None else {
            "price_per_part": str(price[0]), "currency": price[1],
            "per_message": str((price[0] * analysis.parts).quantize(Decimal("0.00001")))},
    }


def preview_audience(session: Session, workspace_id: int, texts: list[tuple[str, int]], spec: Mapping[str, Any],
                     consent_category: str | None, max_parts: int, link: str | None,
                     book: PriceBook | None) -> dict[str, Any]:
    """Parts, encodings, failures and cost over an audience; variants weighted by their ratio."""
    templates = [(compile_text(t, f"variants[{i}].text"), ratio) for i, (t, ratio) in enumerate(texts)]
    probe = Campaign(id=0, workspace_id=workspace_id, audience=dict(spec), consent_category=consent_category,
                     variants=[CampaignVariant(id=i, ratio=r, text="") for i, (_, r) in enumerate(texts)])
    frozen, included = audience.freeze(session, probe)
    if probe in session:
        session.expunge(probe)
    total = frozen.included
    sampled = total > EXACT_LIMIT
    query = select(Contact.phone, Contact.attributes).where(included).order_by(Contact.id)
    if sampled:
        # Every k-th contact by id (ids are spread over the whole audience): about EXACT_LIMIT rows.
        k = -(-total // EXACT_LIMIT)
        query = query.where(Contact.id % k == random.randrange(k))
    rows = session.execute(query).all()
    stats = _tally(rows, templates, max_parts, link, book)
    scale = total / len(rows) if rows else 0
    return {
        "recipients": total, "excluded": frozen.excluded, "sampled": sampled, "analysed": len(rows),
        "parts": {"min": stats["min"], "avg": round(stats["sum"] / max(1, stats["ok"]), 3), "max": stats["max"]},
        "encodings": {k: round(v * scale) for k, v in stats["encodings"].items()},
        "enqueue_failed": round(stats["failed"] * scale),
        "estimated_cost": str((stats["cost"] * Decimal(str(scale))).quantize(Decimal("0.01"))),
        "currency": stats["currency"], "unpriced": round(stats["unpriced"] * scale),
    }


def _tally(rows: Any, templates: list[tuple[render.Template, int]], max_parts: int, link: str | None,
           book: PriceBook | None) -> dict[str, Any]:
    stats: dict[str, Any] = {"min": 0, "max": 0, "sum": 0, "ok": 0, "failed": 0, "encodings": {},
                             "cost": Decimal(0), "currency": None, "unpriced": 0}
    weights = [max(0, r) for _, r in templates]
    pick = random.Random(7)
    for phone, attributes in rows:
        template = templates[pick.choices(range(len(templates)), weights)[0]][0] if len(templates) > 1 \
            else templates[0][0]
        try:
            text = template.render({**(attributes or {}), "phone": phone, "optout_url": link or ""})
        except render.MissingVariable:
            stats["failed"] += 1
            continue
        analysis = encoding.analyze(shorten_for_preview(text, link) if link else text)
        if analysis.parts > max_parts:
            stats["failed"] += 1
            continue
        stats["ok"] += 1
        stats["sum"] += analysis.parts
        stats["min"] = analysis.parts if stats["ok"] == 1 else min(stats["min"], analysis.parts)
        stats["max"] = max(stats["max"], analysis.parts)
        stats["encodings"][analysis.encoding] = stats["encodings"].get(analysis.encoding, 0) + 1
        price = book.price_for(phone) if book else None
        if price is None:
            stats["unpriced"] += 1
        else:
            stats["cost"] += price[0] * analysis.parts
            stats["currency"] = price[1]
    return stats

