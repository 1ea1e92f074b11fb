"""Content rules API: a workspace's blocked words, URL domains and patterns, and a check of any text."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from connector.auth import requires, workspace_id
from connector.extensions import db
from connector.schemas.common import paginate
from connector.schemas.pricing import CheckIn, CheckOut, RuleArgs, RuleIn, RuleOut, RulePage
from core import rules
from core.models import ContentRule

blp = Blueprint("content-rules", __name__, description="Content policy: rules that reject campaigns")


@blp.route("")
class RuleList(MethodView):
    @requires("viewer")
    @blp.arguments(RuleArgs, location="query")
    @blp.response(200, RulePage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        return paginate(db(), rules.rule_query(workspace_id(), args.get("kind")), args)

    @requires("admin")
    @blp.arguments(RuleIn)
    @blp.response(201, RuleOut)
    def post(self, data: dict[str, Any]) -> ContentRule:
        """Add a rule: `word` (whole word, any case, with or without diacritics), `domain` (and its
        subdomains) or `pattern` (a regular expression, case-insensitive)."""
        return rules.save_rule(db(), workspace_id(), data["kind"], data["value"])


@blp.route("/<int:rule_id>")
class RuleItem(MethodView):
    @requires("viewer")
    @blp.response(200, RuleOut)
    def get(self, rule_id: int) -> ContentRule:
        return rules.get_rule(db(), workspace_id(), rule_id)

    @requires("admin")
    @blp.response(204)
    def delete(self, rule_id: int) -> None:
        rules.delete_rule(db(), workspace_id(), rule_id)


@blp.route("/check")
class RuleCheck(MethodView):
    @requires("viewer")
    @blp.arguments(CheckIn)
    @blp.response(200, CheckOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """The first of this workspace's rules that the text breaks, as a campaign would be rejected; null if none."""
        return {"match": rules.check_content(rules.list_rules(db(), workspace_id()), {"text": data["text"]})}
