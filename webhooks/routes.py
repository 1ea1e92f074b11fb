"""The webhook blueprint: `/webhooks/dlr/<provider>/<webhook_token>` for every gateway's delivery reports.

Order per request: find the account by its token (unknown → 404), verify (403), parse (400), then apply in
bulk and answer in the shape the gateway expects. Nothing is written before verify and parse both pass.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Request, jsonify, request

from connector.errors import body
from connector.extensions import db, rt
from core import crypto, delivery, provider_accounts
from webhooks.inbound import BadPayload, InboundRequest, handlers
from webhooks.signing import BadSignature

log = logging.getLogger(__name__)

blp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _error(code: int, message: str) -> Any:
    return jsonify(body(code, message)), code


def inbound_request(req: Request, base_url: str) -> InboundRequest:
    """The request as the gateway sent it; the public URL is rebuilt from SMSCONNECT_BASE_URL (proxies)."""
    raw = req.get_data(cache=True)  # before the form is parsed, which keeps reading from this cache
    query = req.query_string.decode("latin-1")
    public = base_url.rstrip("/") + req.path + (f"?{query}" if query else "")
    urls = tuple(dict.fromkeys((public, req.url)))
    return InboundRequest(req.method, urls, {k.lower(): v for k, v in req.headers.items()}, raw,
                          req.form.to_dict(flat=False), req.args.to_dict(flat=False))


@blp.route("/dlr/<provider>/<token>", methods=["GET", "POST"])
def delivery_report(provider: str, token: str) -> Any:
    handler = handlers().get(provider)
    if handler is None:
        return _error(404, f"no delivery-report endpoint for {provider!r}")
    if request.method == "GET" and not handler.ALLOW_GET:
        return _error(405, f"{provider} delivery reports are POSTed")
    account = provider_accounts.by_webhook_token(db(), provider, token)
    if account is None:
        return _error(404, "unknown webhook token")
    try:
        settings = provider_accounts.decrypted(rt().settings, account)
    except crypto.SecretsUnreadable as exc:
        log.error("account %s: %s", account.id, exc)
        return _error(503, "this account's settings cannot be read; try again later")
    incoming = inbound_request(request, rt().settings.base_url)
    try:
        handler.verify(incoming, settings)
    except BadSignature as exc:
        log.warning("%s delivery report for account %s refused: %s", provider, account.id, exc)
        return _error(403, f"signature check failed: {exc}")
    try:
        reports = handler.parse(incoming, settings)
    except BadPayload as exc:
        return _error(400, str(exc))
    applied = delivery.apply_reports(db(), account, reports)
    log.debug("%s account %s: %s", provider, account.id, applied)
    return handler.reply(applied)


def init_app(app: Flask) -> None:
    app.register_blueprint(blp)
