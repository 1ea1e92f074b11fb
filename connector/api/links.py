"""Short links API: the workspace's short-link domains, manual links, and click counts."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from connector.auth import requires, workspace_id
from connector.extensions import db, rt
from connector.schemas.common import PageArgs, paginate
from connector.schemas.links import (
    DomainIn,
    DomainOut,
    DomainPage,
    DomainPatch,
    IdentityOut,
    LinkArgs,
    LinkIn,
    LinkOut,
    LinkPage,
    UsageOut,
)
from core import clicks, domains, links
from core.errors import InvalidInput, NotFound
from core.models import Contact, LinkDomain, ShortLink, Workspace

blp = Blueprint("links", __name__, description="Short links: domains, manual links and click counts")

_NO_CLICKS = {"clicks": 0, "unique_clickers": 0, "bot_hits": 0, "first_click_at": None, "last_click_at": None}


def _out(items: list[ShortLink]) -> list[dict[str, Any]]:
    """Links with their short URL and click counts (one query for the counts of the whole page)."""
    domains = {d.id: d for d in db().scalars(select(LinkDomain).where(LinkDomain.workspace_id == workspace_id()))}
    counts = clicks.link_counts(db(), [link.id for link in items])
    base = rt().settings.base_url
    return [{**{f: getattr(link, f) for f in LinkOut().fields if hasattr(ShortLink, f)},
             "short_url": links.short_url(link, domains.get(link.domain_id or 0), base),
             **counts.get(link.id, _NO_CLICKS)} for link in items]


def _get_link(link_id: int) -> ShortLink:
    link = db().get(ShortLink, link_id)
    if link is None or link.workspace_id != workspace_id():
        raise NotFound(f"short link {link_id} not found")
    return link


@blp.route("")
class LinkList(MethodView):
    @requires("viewer")
    @blp.arguments(LinkArgs, location="query")
    @blp.response(200, LinkPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Short links, newest first, with click counts; filter by campaign, contact, domain or suffix."""
        query = select(ShortLink).where(ShortLink.workspace_id == workspace_id())
        for name in ("campaign_id", "contact_id", "domain_id", "suffix"):
            if name in args:
                query = query.where(getattr(ShortLink, name) == args[name])
        page = paginate(db(), query.order_by(ShortLink.id.desc()), args)
        page["items"] = _out(list(page["items"]))
        return page

    @requires("editor")
    @blp.arguments(LinkIn)
    @blp.response(201, LinkOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create one short link by hand; it counts as one message against its domain's limit."""
        contact_id = data["contact_id"]
        if contact_id is not None:
            contact = db().get(Contact, contact_id)
            if contact is None or contact.workspace_id != workspace_id():
                raise InvalidInput("contact_id", f"contact {contact_id} not found in this workspace", contact_id)
        workspace = db().get(Workspace, workspace_id())
        assert workspace is not None
        link = links.create_link(
            db(), rt().redis, workspace, data["target_url"], rt().settings.base_url, suffix=data["suffix"],
            domain_id=data["domain_id"], identity_mode=data["identity_mode"], expires_at=data["expires_at"],
            recipient=links.Recipient(contact_id=contact_id), campaign_id=data["campaign_id"],
        )
        return _out([link])[0]


@blp.route("/<int:link_id>")
class LinkItem(MethodView):
    @requires("viewer")
    @blp.response(200, LinkOut)
    def get(self, link_id: int) -> dict[str, Any]:
        """One link with its counts: human clicks, distinct clickers, bot hits, first and last click."""
        return _out([_get_link(link_id)])[0]


@blp.route("/usage")
class LinkUsage(MethodView):
    @requires("viewer")
    @blp.response(200, UsageOut)
    def get(self) -> dict[str, Any]:
        """Domains and custom suffixes in use, with their link count, clicks and bot hits."""
        return {"items": clicks.usage(db(), workspace_id())}


@blp.route("/identities/<string:ident>")
class LinkIdentity(MethodView):
    @requires("viewer")
    @blp.response(200, IdentityOut)
    def get(self, ident: str) -> clicks.Identity:
        """Who clicked: the contact behind the `smsc_id` parameter a landing page received."""
        return clicks.resolve_identity(db(), rt().redis, workspace_id(), ident)


@blp.route("/domains")
class DomainList(MethodView):
    @requires("viewer")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, DomainPage)
    def get(self, args: dict[str, int]) -> dict[str, Any]:
        query = select(LinkDomain).where(LinkDomain.workspace_id == workspace_id()).order_by(LinkDomain.id)
        return paginate(db(), query, args)

    @requires("admin")
    @blp.arguments(DomainIn)
    @blp.response(201, DomainOut)
    def post(self, data: dict[str, Any]) -> LinkDomain:
        """Add a short-link domain (point its DNS at this installation) with an optional messaging limit."""
        return domains.add_domain(db(), workspace_id(), data["host"], data["message_limit"], data["scheme"])


@blp.route("/domains/<int:domain_id>")
class DomainItem(MethodView):
    @requires("viewer")
    @blp.response(200, DomainOut)
    def get(self, domain_id: int) -> LinkDomain:
        return domains.get_domain(db(), workspace_id(), domain_id)

    @requires("admin")
    @blp.arguments(DomainPatch)
    @blp.response(200, DomainOut)
    def patch(self, data: dict[str, Any], domain_id: int) -> LinkDomain:
        """Change the messaging limit (null = none) or reactivate / deactivate the domain."""
        return domains.update_domain(db(), workspace_id(), domain_id, data)

    @requires("admin")
    @blp.response(204)
    def delete(self, domain_id: int) -> None:
        """Deactivate: no new links on it; links already sent keep redirecting."""
        domains.update_domain(db(), workspace_id(), domain_id, {"active": False})
