"""The `smsconnect` command: up, serve, worker, migrate, workspaces, keys, contacts, demo."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from core.errors import SmsConnectError
from core.settings import Settings

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


def settings_from_env() -> Settings:
    """Settings.from_env() for commands that run for long (a bad setting still ends them with its message and
    exit code 2, but an error while they run keeps its traceback)."""
    return friendly_errors(Settings.from_env)()


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
