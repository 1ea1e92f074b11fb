"""Prices API: price per message part by provider and E.164 prefix, CSV import, and cost quotes."""

from __future__ import annotations

import io
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from connector.auth import requires, workspace_id
from connector.extensions import db
from connector.schemas.common import paginate
from connector.schemas.pricing import (
    PriceArgs,
    PriceFile,
    PriceForm,
    PriceImportOut,
    PriceIn,
    PriceOut,
    PricePage,
    QuoteArgs,
    QuoteOut,
)
from core import pricing, workspaces
from core.errors import InvalidInput
from core.models import Price

blp = Blueprint("prices", __name__, description="Price lists per provider and prefix, and cost quotes")


@blp.route("")
class PriceList(MethodView):
    @requires("viewer")
    @blp.arguments(PriceArgs, location="query")
    @blp.response(200, PricePage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        return paginate(db(), pricing.price_query(workspace_id(), args.get("provider")), args)


@blp.route("/<provider>/<prefix>")
class PriceItem(MethodView):
    @requires("viewer")
    @blp.response(200, PriceOut)
    def get(self, provider: str, prefix: str) -> Price:
        return pricing.get_price(db(), workspace_id(), provider, prefix)

    @requires("admin")
    @blp.arguments(PriceIn)
    @blp.response(200, PriceOut)
    def put(self, data: dict[str, Any], provider: str, prefix: str) -> Price:
        """Create or replace the price for numbers starting with `prefix` (like 48 or 4850)."""
        row = pricing.PriceRow(prefix, data["price_per_part"], data["currency"])
        return pricing.set_price(db(), workspace_id(), provider, row)

    @requires("admin")
    @blp.response(204)
    def delete(self, provider: str, prefix: str) -> None:
        pricing.delete_price(db(), workspace_id(), provider, prefix)


@blp.route("/import")
class PriceUpload(MethodView):
    @requires("admin")
    @blp.arguments(PriceForm, location="form")
    @blp.arguments(PriceFile, location="files")
    @blp.response(200, PriceImportOut)
    def post(self, form: dict[str, Any], _files: dict[str, Any]) -> pricing.PriceImport:
        """Upload a CSV (multipart field `file`): columns `prefix` or `country`, `price`, `currency`.

        Good rows are saved; the answer counts them and lists skipped rows with line and reason.
        """
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise InvalidInput("file", "a CSV file is required (multipart field 'file')")
        text = pricing.decode_csv(upload.stream.read(pricing.MAX_FILE_BYTES + 1))
        return pricing.import_prices_csv(db(), workspace_id(), form["provider"], io.StringIO(text))


@blp.before_request
def allow_price_lists() -> None:
    if request.method == "POST" and request.endpoint == "prices.PriceUpload":
        request.max_content_length = pricing.MAX_FILE_BYTES + 64 * 1024  # the file plus the multipart framing


@blp.route("/quote")
class PriceQuote(MethodView):
    @requires("viewer")
    @blp.arguments(QuoteArgs, location="query")
    @blp.response(200, QuoteOut)
    def get(self, args: dict[str, Any]) -> pricing.Quote:
        """What `parts` parts to `phone` cost with `provider`; the price fields are null without a price."""
        ws = workspaces.get_workspace(db(), workspace_id())
        return pricing.quote(db(), ws, args["provider"], args["phone"], args["parts"])
