"""Message templates: saved texts with language versions, referred to by id or name, and their preview."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, String, cast, select
from sqlalchemy.orm import Session

from core import campaigns, preview, render
from core.errors import Conflict, InvalidInput, NotFound
from core.models import Contact, MessageTemplate
from core.models.base import utcnow

MAX_PARTS = campaigns.MAX_PARTS_MAX  # as for campaigns
DEFAULT_MAX_PARTS = 6
FIELDS = ("name", "text", "languages", "fallback_language", "sender_id", "consent_category", "max_parts", "tags")


def _check(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validates the given fields (all optional here; `create_template` requires name and text)."""
    out: dict[str, Any] = {}
    if "name" in data:
        name = str(data["name"] or "").strip()
        if not name or len(name) > 200 or name.isdigit():
            raise InvalidInput("name", "must be 1..200 characters and not only digits (ids are numbers)", name)
        out["name"] = name
    if "text" in data:
        preview.compile_text(data["text"], "text")
        out["text"] = data["text"]
    if "languages" in data:
        languages = dict(data["languages"] or {})
        for language, text in languages.items():
            if not isinstance(language, str) or not 1 <= len(language) <= 16:
                raise InvalidInput("languages", f"language {language!r} must be 1..16 characters", language)
            preview.compile_text(text, f"languages.{language}")
        out["languages"] = languages
    if "fallback_language" in data:
        fallback = data["fallback_language"] or None
        if fallback is not None and (not isinstance(fallback, str) or len(fallback) > 16):
            raise InvalidInput("fallback_language", "must be up to 16 characters", fallback)
        out["fallback_language"] = fallback
    if "sender_id" in data:
        out["sender_id"] = campaigns.check_sender(data["sender_id"])
    if "consent_category" in data:
        category = data["consent_category"] or None
        if category is not None and (not isinstance(category, str) or len(category) > 64):
            raise InvalidInput("consent_category", "must be up to 64 characters", category)
        out["consent_category"] = category
    if "max_parts" in data:
        parts = data["max_parts"]
        if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= MAX_PARTS:
            raise InvalidInput("max_parts", f"must be 1..{MAX_PARTS}", parts)
        out["max_parts"] = parts
    if "tags" in data:
        tags = list(data["tags"] or [])
        if any(not isinstance(t, str) or not t.strip() or len(t) > 100 for t in tags):
            raise InvalidInput("tags", "each tag must be 1..100 characters", tags)
        out["tags"] = sorted({t.strip() for t in tags})
    return out


def _name_taken(session: Session, workspace_id: int, name: str, other_than: int | None = None) -> None:
    found = session.scalar(select(MessageTemplate.id).where(MessageTemplate.workspace_id == workspace_id,
                                                            MessageTemplate.name == name))
    if found is not None and found != other_than:
        raise Conflict(f"a template named {name!r} exists (id {found})")


def create_template(session: Session, workspace_id: int, data: Mapping[str, Any]) -> MessageTemplate:
    for required in ("name", "text"):
        if required not in data:
            raise InvalidInput(required, "is required")
    values = _check(data)
    _name_taken(session, workspace_id, values["name"])
    template = MessageTemplate(workspace_id=workspace_id, **{"max_parts": DEFAULT_MAX_PARTS, "languages": {},
                                                             "tags": [], **values})
    session.add(template)
    session.flush()
    return template


def update_template(session: Session, template: MessageTemplate, data: Mapping[str, Any]) -> MessageTemplate:
    """PATCH semantics. Messages already accepted keep their text: they store it rendered."""
    values = _check(data)
    if "name" in values:
        _name_taken(session, template.workspace_id, values["name"], template.id)
    for key, value in values.items():
        setattr(template, key, value)
    template.updated_at = utcnow()
    session.flush()
    return template


def get_template(session: Session, workspace_id: int, template_id: int) -> MessageTemplate:
    template = session.get(MessageTemplate, template_id)
    if template is None or template.workspace_id != workspace_id:
        raise NotFound(f"template {template_id} not found")
    return template


def find_template(session: Session, workspace_id: int, ref: int | str) -> MessageTemplate:
    """A template by id (a number, or a string of digits) or by name."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return get_template(session, workspace_id, int(ref))
    template = session.scalar(select(MessageTemplate).where(MessageTemplate.workspace_id == workspace_id,
                                                            MessageTemplate.name == str(ref)))
    if template is None:
        raise NotFound(f"template {ref!r} not found")
    return template


def template_query(workspace_id: int, tag: str | None = None, name: str | None = None) -> Select[Any]:
    query = select(MessageTemplate).where(MessageTemplate.workspace_id == workspace_id).order_by(MessageTemplate.id)
    if name:
        query = query.where(MessageTemplate.name.contains(name, autoescape=True))
    if tag:
        query = query.where(cast(MessageTemplate.tags, String).contains(f'"{tag}"', autoescape=True))
    return query


def delete_template(session: Session, template: MessageTemplate) -> None:
    session.delete(template)
    session.flush()


@dataclass(frozen=True)
class Compiled:
    """A template compiled once for many messages (a batch of the API, a CRM trigger)."""

    template: MessageTemplate
    default: render.Template
    languages: dict[str, render.Template]

    def render(self, variables: Mapping[str, Any]) -> str:
        """Renders in the recipient's `language` variable, else the fallback language, else the main text."""
        return self.pick(variables.get("language")).render(variables)

    def pick(self, language: object) -> render.Template:
        if not self.languages or not isinstance(language, str) or not language:
            return self.default
        fallback = self.template.fallback_language or "__default__"
        try:
            return render.pick_variant({**self.languages, fallback: self.default}, language, fallback)
        except render.MissingVariant:
            return self.default


def compile_saved(template: MessageTemplate) -> Compiled:
    return Compiled(template, render.compile_template(template.text),
                    {lang: render.compile_template(text) for lang, text in (template.languages or {}).items()})


def preview_template(session: Session, template: MessageTemplate, variables: Mapping[str, Any],
                     contact: Contact | None, default_base: str) -> dict[str, Any]:
    """The message as a contact (or the given variables) would get it: text, parts, cost, failures."""
    values: dict[str, Any] = {**(contact.attributes if contact else {}), **variables}
    if contact is not None:
        values.setdefault("phone", contact.phone)
    values.setdefault("optout_url", f"{default_base}/u/{'x' * 22}")
    text = compile_saved(template).pick(values.get("language")).source
    link = preview.sample_link(session, template.workspace_id, default_base, None)
    return preview.preview(session, template.workspace_id, text, values, contact.phone if contact else None,
                           template.max_parts, link, preview.price_book(session, template.workspace_id))
