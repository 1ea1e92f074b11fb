"""Trigger endpoints of CRM plugins: `POST /webhooks/plugins/<plugin>/<token>`.

The token names the workspace's connection (and is its shared secret); the plugin verifies and parses the
request (Salesforce: organization id of an Outbound Message, or the secret header of a JSON callout); core
queues the actions and answers with the exact reply the CRM expects (Salesforce: the SOAP ACK). A refused
request is answered before anything is queued: a SOAP fault for XML bodies, our JSON error body otherwise.
"""

from __future__ import annotations

import logging
from typing import Any
from xml.sax.saxutils import escape

from flask import Blueprint, Flask, Response, jsonify, request

from connector.errors import body
from connector.extensions import db, rt
from core import crypto
from core.plugins import connections, triggers
from core.plugins.contract import InboundRequest
from core.plugins.errors import PluginNotFound, TriggerRefused

log = logging.getLogger(__name__)

blp = Blueprint("plugin_triggers", __name__, url_prefix="/webhooks/plugins")

FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>{message}</faultstring></soapenv:Fault>
 </soapenv:Body>
</soapenv:Envelope>
"""


def _refuse(status: int, message: str, raw: bytes) -> Any:
    if raw.lstrip()[:1] == b"<":
        return Response(FAULT.format(message=escape(message)), status=status, content_type="text/xml; charset=utf-8")
    return jsonify(body(status, message)), status


@blp.post("/<plugin>/<token>")
def trigger(plugin: str, token: str) -> Any:
    raw = request.get_data(cache=True)
    connection = connections.by_webhook_token(db(), plugin, token)
    if connection is None:
        return _refuse(404, "unknown trigger token", raw)
    incoming = InboundRequest(request.method, request.path, {k.lower(): v for k, v in request.headers.items()}, raw,
                              request.args.to_dict())
    try:
        reply = triggers.receive(rt(), db(), connection, incoming)
    except TriggerRefused as exc:
        log.warning("%s trigger for connection %s refused: %s", plugin, connection.id, exc)
        return _refuse(exc.status, str(exc), raw)
    except (PluginNotFound, crypto.SecretsUnreadable) as exc:
        log.error("%s connection %s: %s", plugin, connection.id, exc)
        return _refuse(503, "this connection cannot be used now; try again later", raw)
    return Response(reply.body, status=reply.status, content_type=reply.content_type)


def init_app(app: Flask) -> None:
    app.register_blueprint(blp)
