"""The `smsconnect` command: up, serve, worker, migrate, workspaces, keys, contacts, demo."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from core.errors import SmsConnectError

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(command: F) -> F:
    """Bad input ends the command with its message on stderr and exit code 2, never a traceback."""

    @wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (SmsConnectError, ValueError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapped  # type: ignore[return-value]


@click.group()
@click.version_option(package_name="smsconnect")
def main() -> None:
    """smsconnect: SMS campaigns for the CRMs you already run."""


def _register() -> None:
    from connector.cli import admin, contacts, demo, plugins, run, send, simulator

    for module in (run, admin, contacts, demo, simulator, plugins, send):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
