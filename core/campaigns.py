"""Campaigns: validated creation and edits, duplication, deletion, and the user actions of the lifecycle."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import groups, lifecycle, phones, render, segments
from core.errors import Conflict, InvalidInput, NotFound
from core.models import AttributeName, Campaign, CampaignVariant
from core.models.base import utcnow

THROTTLE_MIN, THROTTLE_MAX = 60, 200_000  # messages per hour
MAX_PARTS_MAX = 8
ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 .\-_&]{1,11}$")
BUILTIN_VARIABLES = frozenset({"phone", "optout_url"})
EDITABLE = ("name", "tags", "kind", "sender_id", "audience", "schedule_at", "throttle_per_hour", "max_parts",
            "consent_category", "budget_cap", "send_window", "booster", "settings", "provider_account_id")
LIVE_EDITABLE = frozenset({"throttle_per_hour", "ratios"})


def get_campaign(session: Session, workspace_id: int, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.workspace_id != workspace_id:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def check_sender(sender: str | None) -> str | None:
    """Alphanumeric (1..11 characters, at least one letter) or a number written in E.164."""
    if sender is None or sender == "":
        return None
    if sender.startswith("+") or sender.isdigit():
        e164 = phones.normalize(sender if sender.startswith("+") else "+" + sender, "ZZ", field="sender_id")
        return e164
    if not ALPHA_SENDER.match(sender):
        raise InvalidInput("sender_id", "must be 1..11 letters/digits with at least one letter, or an E.164 number",
                           sender)
    return sender


def check_throttle(value: int) -> int:
    if not isinstance(value, int) or not THROTTLE_MIN <= value <= THROTTLE_MAX:
        raise InvalidInput("throttle_per_hour", f"must be {THROTTLE_MIN}..{THROTTLE_MAX} messages per hour", value)
    return value


def check_schedule(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    if moment <= utcnow():
        raise InvalidInput("schedule_at", "is in the past; leave it out to send now", value.isoformat())
    return moment.astimezone(UTC)


def check_window(window: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not window:
        return None
    try:
        start, end = time.fromisoformat(window["start"]), time.fromisoformat(window["end"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("send_window", 'must be {"start": "HH:MM", "end": "HH:MM"}', dict(window)) from None
    if start >= end:
        raise InvalidInput("send_window", "start must be before end (recipient's local time)", dict(window))
    return {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}


def check_budget(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput("budget_cap", "must be a number", value) from None
    if amount <= 0:
        raise InvalidInput("budget_cap", "must be above 0", value)
    return amount


def check_audience(session: Session, workspace_id: int, audience: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("groups", "segments", "contact_ids"):
        ids = audience.get(key) or []
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise InvalidInput(f"audience.{key}", "must be a list of ids", ids)
        out[key] = sorted(set(ids))
    for group_id in out["groups"]:
        groups.get_group(session, workspace_id, group_id)
    for segment_id in out["segments"]:
        segments.get_segment(session, workspace_id, segment_id)
    if audience.get("filter") is not None:
        segments.compile_filter(audience["filter"], workspace_id)
        out["filter"] = audience["filter"]
    unknown = set(audience) - {"groups", "segments", "contact_ids", "filter"}
    if unknown:
        raise InvalidInput("audience", f"unknown keys {sorted(unknown)}", sorted(unknown))
    return out


def known_variables(session: Session, workspace_id: int) -> frozenset[str]:
    names = session.scalars(select(AttributeName.name).where(AttributeName.workspace_id == workspace_id))
    return BUILTIN_VARIABLES | frozenset(names)


def check_variants(session: Session, workspace_id: int, variants: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Texts compile, every variable is known or has a default, names are unique and ratios add up to 100."""
    if not variants:
        raise InvalidInput("variants", "at least one message variant is needed", [])
    known = known_variables(session, workspace_id)
    out, names = [], set()
    for i, variant in enumerate(variants):
        name = str(variant.get("name") or chr(ord("A") + i))
        if name in names:
            raise InvalidInput(f"variants[{i}].name", f"{name!r} is used twice", name)
        names.add(name)
        texts = {"text": variant.get("text") or ""} | {
            f"languages.{lang}": text for lang, text in (variant.get("languages") or {}).items()}
        for field, text in texts.items():
            _check_text(f"variants[{i}].{field}", text, known)
        out.append({"name": name, "ratio": int(variant.get("ratio", 100 if len(variants) == 1 else 0)),
                    "text": texts["text"], "languages": dict(variant.get("languages") or {}),
                    "fallback_language": variant.get("fallback_language")})
    check_ratios([v["ratio"] for v in out])
    return out


def _check_text(field: str, text: str, known: frozenset[str]) -> None:
    if not text.strip():
        raise InvalidInput(field, "must not be empty", text)
    try:
        template = render.compile_template(text)
    except render.RenderError as exc:
        raise InvalidInput(field, str(exc), text[:80]) from None
    unknown = sorted(template.variables - template.defaulted - known)
    if unknown:
        raise InvalidInput(field, f"unknown variable(s) {', '.join(unknown)}: no contact has them; "
                                  "add a default, e.g. {{ " + unknown[0] + ' | default("...") }}', unknown)


def check_ratios(ratios: list[int]) -> None:
    if any(r < 0 for r in ratios) or sum(ratios) != 100:
        raise InvalidInput("variants", f"ratios must add up to 100, they add up to {sum(ratios)}", ratios)


def apply_fields(session: Session, campaign: Campaign, data: Mapping[str, Any]) -> None:
    checks = {
        "sender_id": check_sender, "throttle_per_hour": check_throttle, "schedule_at": check_schedule,
        "send_window": check_window, "budget_cap": check_budget,
    }
    for field in EDITABLE:
        if field not in data:
            continue
        value = data[field]
        if field in checks:
            value = checks[field](value)
        elif field == "audience":
            value = check_audience(session, campaign.workspace_id, value or {})
        elif field == "max_parts" and not (isinstance(value, int) and 1 <= value <= MAX_PARTS_MAX):
            raise InvalidInput("max_parts", f"must be 1..{MAX_PARTS_MAX}", value)
        elif field == "kind" and value not in ("outbound", "two_way"):
            raise InvalidInput("kind", "must be outbound or two_way", value)
        setattr(campaign, field, value)
    if "variants" in data:
        campaign.variants = [CampaignVariant(**v) for v in check_variants(session, campaign.workspace_id,
                                                                           data["variants"])]


def create_campaign(session: Session, workspace_id: int, data: Mapping[str, Any]) -> Campaign:
    name = (data.get("name") or "").strip()
    if not name:
        raise InvalidInput("name", "must not be empty", data.get("name"))
    campaign = Campaign(workspace_id=workspace_id, name=name, tags=[], audience={}, excluded={}, settings={},
                        status=lifecycle.DRAFT, consent_category=data.get("consent_category", "marketing"))
    session.add(campaign)
    apply_fields(session, campaign, {**data, "name": name})
    session.flush()
    return campaign


def update_campaign(session: Session, campaign: Campaign, data: Mapping[str, Any]) -> Campaign:
    """Full edits in Draft/Rejected; otherwise only the throttle and the variant ratios, taking effect at once."""
    if set(data) <= LIVE_EDITABLE | {"variants"} and not _changes_texts(campaign, data):
        lifecycle.next_status(campaign.status, "tune")
        if "throttle_per_hour" in data:
            campaign.throttle_per_hour = check_throttle(data["throttle_per_hour"])
        if "variants" in data or "ratios" in data:
            set_ratios(campaign, data)
        session.flush()
        return campaign
    campaign.status = lifecycle.next_status(campaign.status, "edit")
    campaign.status_reason = None
    apply_fields(session, campaign, data)
    session.flush()
    return campaign


def _changes_texts(campaign: Campaign, data: Mapping[str, Any]) -> bool:
    given = data.get("variants")
    if given is None:
        return False
    current = {v.name: v for v in campaign.variants}
    for item in given:
        variant = current.get(item.get("name", ""))
        if variant is None or any(k in item and item[k] != getattr(variant, k) for k in ("text", "languages")):
            return True
    return False


def set_ratios(campaign: Campaign, data: Mapping[str, Any]) -> None:
    ratios = data.get("ratios") or {v["name"]: v["ratio"] for v in data.get("variants", []) if "ratio" in v}
    unknown = set(ratios) - {v.name for v in campaign.variants}
    if unknown:
        raise InvalidInput("ratios", f"no variant named {sorted(unknown)}", sorted(unknown))
    check_ratios([int(ratios.get(v.name, v.ratio)) for v in campaign.variants])
    for variant in campaign.variants:
        variant.ratio = int(ratios.get(variant.name, variant.ratio))


def duplicate_campaign(session: Session, campaign: Campaign, target_workspace_id: int | None = None) -> Campaign:
    """A Draft copy (audience references only carry over within the same workspace)."""
    same = target_workspace_id in (None, campaign.workspace_id)
    copy = Campaign(
        workspace_id=campaign.workspace_id if same else target_workspace_id, name=f"{campaign.name} (copy)",
        tags=list(campaign.tags), kind=campaign.kind, status=lifecycle.DRAFT, sender_id=campaign.sender_id,
        audience=dict(campaign.audience) if same else {}, throttle_per_hour=campaign.throttle_per_hour,
        max_parts=campaign.max_parts, consent_category=campaign.consent_category, budget_cap=campaign.budget_cap,
        send_window=campaign.send_window, booster=campaign.booster, settings=dict(campaign.settings),
        excluded={}, provider_account_id=campaign.provider_account_id if same else None,
    )
    copy.variants = [CampaignVariant(name=v.name, ratio=v.ratio, text=v.text, languages=dict(v.languages),
                                     fallback_language=v.fallback_language) for v in campaign.variants]
    session.add(copy)
    session.flush()
    return copy


def missing_steps(campaign: Campaign) -> list[str]:
    """What a Draft still lacks before it can be sent."""
    missing = []
    audience = campaign.audience or {}
    if not any(audience.get(k) for k in ("groups", "segments", "contact_ids")) and "filter" not in audience:
        missing.append("audience")
    if not campaign.variants:
        missing.append("variants")
    return missing


def set_status(campaign: Campaign, action: str, reason: str | None = None, resume_to: str | None = None) -> None:
    campaign.status = lifecycle.next_status(campaign.status, action, resume_to)
    campaign.status_reason = reason
    if campaign.status == lifecycle.SENDING and campaign.started_at is None:
        campaign.started_at = utcnow()
    if campaign.status in lifecycle.ENDED:
        campaign.finished_at = utcnow()


def ensure_submittable(campaign: Campaign) -> None:
    missing = missing_steps(campaign)
    if missing:
        raise Conflict(f"campaign {campaign.id} is incomplete: missing {', '.join(missing)}")
    if campaign.schedule_at is not None:
        moment = campaign.schedule_at if campaign.schedule_at.tzinfo else campaign.schedule_at.replace(tzinfo=UTC)
        if moment <= utcnow():
            raise InvalidInput("schedule_at", "is in the past; change it or clear it to send now",
                               moment.isoformat())
