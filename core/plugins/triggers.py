"""CRM triggers: the plugin parses the request into actions and the exact reply; core acknowledges at once,
drops repeats (CRMs retry until acknowledged), and runs each action as an RQ job.

Actions: send a template to one record (through `core.messaging.accept_messages`), start a copy of one of
our campaigns for a synced segment, opt a record's contact out.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from rq import Retry
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import actions, campaigns, contacts, db, queues
from core.errors import NotFound
from core.models import Contact, ExternalId, PluginConnection, PluginSegment
from core.plugins import connections
from core.plugins.contract import Action, InboundRequest, OptOut, Reply, SendTemplate, StartCampaign
from core.runtime import Runtime

log = logging.getLogger(__name__)

SEEN_TTL_S = 48 * 3600  # Salesforce retries an unacknowledged Outbound Message for up to 24 h
SEEN_KEY = "smsconnect:plugin:{id}:trigger:{key}"
ACTIONS: dict[str, type[Any]] = {"send_template": SendTemplate, "start_campaign": StartCampaign, "opt_out": OptOut}


def receive(rt: Runtime, session: Session, connection: PluginConnection, request: InboundRequest) -> Reply:
    """Parses and queues the actions of one trigger request; returns the reply the CRM expects.

    Raises TriggerRefused (wrong organization, bad body) before anything is queued."""
    plugin = connections.build(rt.settings, connection)
    result = plugin.parse_trigger(request)
    for action in result.actions:
        if rt.redis.set(SEEN_KEY.format(id=connection.id, key=action.key), 1, nx=True, ex=SEEN_TTL_S):
            queues.queue(rt.redis).enqueue("core.jobs.run_plugin_action", connection.id, encode(action),
                                           retry=Retry(max=3, interval=[10, 60, 300]))
        else:
            log.info("%s trigger %s already received; skipped", connection.plugin, action.key)
    return result.reply


def encode(action: Action) -> dict[str, Any]:
    """An action as JSON job arguments."""
    name = next(k for k, cls in ACTIONS.items() if isinstance(action, cls))
    return {"type": name, **dataclasses.asdict(action)}


def decode(data: dict[str, Any]) -> Action:
    fields = {k: v for k, v in data.items() if k != "type"}
    return ACTIONS[data["type"]](**fields)  # type: ignore[no-any-return]


def execute(rt: Runtime, connection_id: int, action: Action) -> Any:
    """Runs one action for the connection's workspace."""
    with db.transaction(rt.sessions) as session:
        connection = session.get(PluginConnection, connection_id)
        if connection is None:
            raise NotFound(f"plugin connection {connection_id} not found")
        if isinstance(action, SendTemplate):
            return send_template(rt, session, connection, action)
        if isinstance(action, StartCampaign):
            return start_campaign(rt, session, connection, action)
        return opt_out(session, connection, action)


def send_template(rt: Runtime, session: Session, connection: PluginConnection, action: SendTemplate) -> Any:
    from core import messaging  # the transactional send API; imported here, as it imports much of core

    item: dict[str, Any] = {"external_id": {"source": connection.plugin, "id": action.record_id},
                            "reference": action.key[:200]}
    if action.template:
        item.update(template=action.template, variables=dict(action.variables))
    else:
        item["text"] = action.text
    return messaging.accept_messages(rt, session, connection.workspace_id, [item],
                                     idempotency_key=f"{connection.plugin}-{action.key}"[:200],
                                     create_contacts=False, source=connection.plugin)


def start_campaign(rt: Runtime, session: Session, connection: PluginConnection, action: StartCampaign) -> int:
    """A Draft copy of campaign `campaign_id` for the segment's group, submitted; returns the new id."""
    link = session.get(PluginSegment, (connection.id, action.segment_id))
    if link is None:
        raise NotFound(f"{connection.plugin} segment {action.segment_id} has not been synced yet")
    template = campaigns.get_campaign(session, connection.workspace_id, action.campaign_id)
    copy = campaigns.duplicate_campaign(session, template)
    copy.audience = {"groups": [link.group_id]}
    session.flush()
    actions.submit(rt, session, copy)
    return copy.id


def opt_out(session: Session, connection: PluginConnection, action: OptOut) -> int | None:
    contact = session.scalar(select(Contact).join(ExternalId, ExternalId.contact_id == Contact.id).where(
        ExternalId.workspace_id == connection.workspace_id, ExternalId.source == connection.plugin,
        ExternalId.external_id == action.record_id))
    if contact is None:
        log.info("%s opt-out for unknown record %s", connection.plugin, action.record_id)
        return None
    contacts.set_consent(session, contact, action.category, False, source=connection.plugin)
    return contact.id
