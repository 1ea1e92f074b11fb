"""`smsconnect send --workspace W --to +48... --text "..."` (or `--template NAME --var k=v`): one transactional
message from a shell, through the same path as POST /api/v1/messages; `--wait` follows it to its final status."""

from __future__ import annotations

import sys
import time

import click

from connector.cli import friendly_errors
from core import db, messaging, runtime
from core.models import Message
from core.models.messages import FINAL_STATUSES
from core.settings import Settings

POLL_S = 0.5


def _variables(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not name=value", param_hint="--var")
        out[name.strip()] = value
    return out


@click.command()
@click.option("--workspace", "workspace_id", type=int, required=True, help="workspace id")
@click.option("--to", required=True, help="phone number in any common form")
@click.option("--text", default=None, help="message text (personalisation allowed)")
@click.option("--template", default=None, help="template name or id, instead of --text")
@click.option("--var", "pairs", multiple=True, help="template variable name=value (repeatable)")
@click.option("--sender", default=None, help="sender ID (defaults to the template's)")
@click.option("--reference", default=None, help="your own id, stored with the message")
@click.option("--wait", is_flag=True, help="wait for the final status (a worker must be running)")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="seconds --wait waits")
@friendly_errors
def send(workspace_id: int, to: str, text: str | None, template: str | None, pairs: tuple[str, ...],
         sender: str | None, reference: str | None, wait: bool, timeout: float) -> None:
    """Send one SMS now; prints its id (and with --wait its final status). Exit 2 on bad input, 1 when the
    message is not sent or ends undelivered."""
    if (text is None) == (template is None):
        raise click.UsageError("give either --text or --template")
    item = {"to": to, "variables": _variables(pairs), "sender": sender, "reference": reference,
            **({"text": text} if text is not None else {"template": template})}
    rt = runtime.configure(Settings.from_env())
    with db.transaction(rt.sessions) as session:
        result = messaging.accept_messages(rt, session, workspace_id, [{k: v for k, v in item.items() if v}],
                                           source="cli")[0]
    if result["field"]:
        click.echo(f"error: {result['field']}: {result['reason']}", err=True)
        sys.exit(2)
    click.echo(result["id"])
    if result["status"] != "accepted":
        click.echo(f"not sent: {result['reason']}", err=True)
        sys.exit(1)
    click.echo(f"{result['parts']} part(s), {result['encoding']}, cost {result['cost'] or '?'} "
               f"{result['currency'] or ''}".rstrip(), err=True)
    if wait:
        status, reason = _follow(rt, result["id"], timeout)
        click.echo(status + (f": {reason}" if reason else ""))
        if status not in ("delivered", "sent"):
            sys.exit(1)


def _follow(rt: runtime.Runtime, message_id: int, timeout: float) -> tuple[str, str | None]:
    deadline = time.monotonic() + timeout
    while True:
        with rt.sessions() as session:
            message = session.get(Message, message_id)
            assert message is not None
            status, reason = message.status, message.reason
        if status in FINAL_STATUSES or time.monotonic() >= deadline:
            return status, reason
        time.sleep(POLL_S)


COMMANDS = [send]
