"""SQLAlchemy 2 typed mappings, one module per aggregate."""

from core.models.audience import Group, GroupMember, Segment
from core.models.base import Base
from core.models.contact import Consent, Contact, ContactTag, ExternalId
from core.models.imports import ContactImport, ImportRowError
from core.models.workspace import ApiKey, Workspace

__all__ = [
    "ApiKey", "Base", "Consent", "Contact", "ContactImport", "ContactTag", "ExternalId",
    "Group", "GroupMember", "ImportRowError", "Segment", "Workspace",
]
