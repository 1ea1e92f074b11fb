"""Provider accounts of the caller's workspace: admins manage them, viewers list them. Secrets never leave."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from connector.auth import identity, requires, workspace_id
from connector.extensions import db, rt
from connector.schemas.common import PageArgs, paginate
from connector.schemas.providers import (
    ProviderAccountIn,
    ProviderAccountOut,
    ProviderAccountPage,
    ProviderAccountPatch,
    ProviderType,
)
from core import provider_accounts, providers
from core.models import ProviderAccount

blp = Blueprint("providers", __name__, description="SMS gateway accounts (admin; viewers see them masked)")


def _out(account: ProviderAccount) -> dict[str, Any]:
    settings = rt().settings
    return {"id": account.id, "provider": account.provider, "name": account.name, "is_default": account.is_default,
            "created_at": account.created_at, "settings": provider_accounts.masked(settings, account),
            "webhook_url": provider_accounts.callback_url(settings, account) if identity().role == "admin" else None}


@blp.route("")
class AccountList(MethodView):
    @requires("viewer")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, ProviderAccountPage)
    def get(self, args: dict[str, int]) -> dict[str, Any]:
        page = paginate(db(), provider_accounts.list_accounts(workspace_id()), args)
        page["items"] = [_out(account) for account in page["items"]]
        return page

    @requires("admin")
    @blp.arguments(ProviderAccountIn)
    @blp.response(201, ProviderAccountOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add an account; the workspace's first one becomes its default."""
        return _out(provider_accounts.create_account(db(), rt().settings, workspace_id(), data["provider"],
                                                     data["settings"], data["name"], data["is_default"]))


@blp.route("/types")
class TypeList(MethodView):
    @requires("viewer")
    @blp.response(200, ProviderType(many=True))
    def get(self) -> list[dict[str, Any]]:
        """The gateways available and the settings each one takes."""
        out = []
        for name, cls in sorted(providers.PROVIDERS.items()):
            schema = cls.settings_schema()
            out.append({"name": name, "idempotent": cls.idempotent, "max_batch": cls.max_batch, "fields_": [
                {"name": f.data_key or key, "required": f.required, "secret": bool(f.metadata.get("secret"))}
                for key, f in schema.fields.items()]})
        return out


@blp.route("/<int:account_id>")
class AccountItem(MethodView):
    @requires("viewer")
    @blp.response(200, ProviderAccountOut)
    def get(self, account_id: int) -> dict[str, Any]:
        return _out(provider_accounts.get_account(db(), workspace_id(), account_id))

    @requires("admin")
    @blp.arguments(ProviderAccountPatch)
    @blp.response(200, ProviderAccountOut)
    def patch(self, data: dict[str, Any], account_id: int) -> dict[str, Any]:
        account = provider_accounts.get_account(db(), workspace_id(), account_id)
        return _out(provider_accounts.update_account(db(), rt().settings, account, data))

    @requires("admin")
    @blp.response(204)
    def delete(self, account_id: int) -> None:
        provider_accounts.delete_account(db(), provider_accounts.get_account(db(), workspace_id(), account_id))


@blp.route("/<int:account_id>/default")
class AccountDefault(MethodView):
    @requires("admin")
    @blp.response(200, ProviderAccountOut)
    def post(self, account_id: int) -> dict[str, Any]:
        """Make this the workspace's default account for new campaigns."""
        account = provider_accounts.get_account(db(), workspace_id(), account_id)
        provider_accounts.set_default(db(), account)
        return _out(account)
