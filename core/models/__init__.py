"""SQLAlchemy 2 typed mappings, one module per aggregate."""

from core.models.audience import Group, GroupMember, Segment
from core.models.base import Base
from core.models.campaigns import Campaign, CampaignVariant, ContentRule, DispatchLease
from core.models.contact import AttributeName, Consent, Contact, ContactTag, ExternalId
from core.models.idempotency import ApiIdempotency
from core.models.imports import ContactImport, ImportRowError
from core.models.links import Click, LinkDomain, ShortLink
from core.models.messages import Message, MessageEvent, Price, ProviderAccount
from core.models.plugins import PluginConnection, PluginOutbox, PluginSegment
from core.models.templates import MessageTemplate
from core.models.workspace import ApiKey, Workspace

__all__ = [
    "ApiIdempotency", "ApiKey", "AttributeName", "Base", "Campaign", "CampaignVariant", "Click", "Consent", "Contact",
    "ContactImport", "ContactTag", "ContentRule", "DispatchLease", "ExternalId", "Group", "GroupMember",
    "ImportRowError", "LinkDomain", "Message", "MessageEvent", "MessageTemplate", "PluginConnection", "PluginOutbox",
    "PluginSegment", "Price", "ProviderAccount", "Segment", "ShortLink", "Workspace",
]
