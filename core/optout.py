"""Opt-out links: `{{ optout_url }}` leads a recipient to a hosted page that withdraws one consent.

The token is short because it travels in an SMS: the contact id in base62, an HMAC of the workspace,
contact and category under the installation's SECRET_KEY (72 bits), and the category itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote, unquote

from sqlalchemy.orm import Session

from core import contacts
from core.errors import NotFound
from core.models import Contact
from core.settings import Settings

SOURCE = "optout-link"  # the consent source recorded on opt-out
MAC_CHARS = 12  # base64url characters of HMAC-SHA256 kept: 72 bits
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class OptOut:
    """What a valid token names."""

    contact: Contact
    category: str


def _b62(number: int) -> str:
    out = ""
    while True:
        number, digit = divmod(number, 62)
        out = _ALPHABET[digit] + out
        if number == 0:
            return out


def _from_b62(text: str) -> int:
    number = 0
    for char in text:
        number = number * 62 + _ALPHABET.index(char)
    return number


def _mac(secret: str, workspace_id: int, contact_id: int, category: str) -> str:
    message = f"optout\0{workspace_id}\0{contact_id}\0{category}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:MAC_CHARS]


def optout_token(secret: str, workspace_id: int, contact_id: int, category: str) -> str:
    return f"{_b62(contact_id)}.{_mac(secret, workspace_id, contact_id, category)}.{quote(category, safe='')}"


def optout_url(settings: Settings, workspace_id: int, contact_id: int, category: str = "marketing") -> str:
    """The recipient's own unsubscribe page for one consent category, e.g. https://host/u/g7.Xk2J9aB3cD4e.marketing"""
    return f"{settings.base_url}/u/{optout_token(settings.secret_key, workspace_id, contact_id, category)}"


def check_token(session: Session, secret: str, token: str) -> OptOut:
    """The contact and category a token names; NotFound for anything forged, mangled or erased."""
    parts = token.split(".", 2)
    if len(parts) != 3 or not parts[0] or any(c not in _ALPHABET for c in parts[0]) or len(parts[0]) > 12:
        raise NotFound("unknown opt-out link")
    contact_id, category = _from_b62(parts[0]), unquote(parts[2])
    contact = session.get(Contact, contact_id)
    if contact is None or contact.status == "deleted":
        raise NotFound("unknown opt-out link")
    if not hmac.compare_digest(parts[1], _mac(secret, contact.workspace_id, contact_id, category)):
        raise NotFound("unknown opt-out link")
    return OptOut(contact, category)


def opt_out(session: Session, secret: str, token: str) -> OptOut:
    """Records the opt-out a valid token names (source "optout-link"); repeating it is harmless."""
    found = check_token(session, secret, token)
    contacts.set_consent(session, found.contact, found.category, False, source=SOURCE)
    from core.plugins import outbox

    outbox.note_opt_out(session, found.contact.workspace_id, found.contact.id, found.category)  # CRM write-back
    return found
