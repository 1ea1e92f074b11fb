"""`smsconnect simulator`: the local carrier simulator (core/simulator.py) in the foreground.

The options are core.simulator's own (`smsconnect simulator --help`); this command only adds the default
data dir. A subprocess can skip the CLI's imports: `command_line(...)` runs `python -m core.simulator`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from core import simulator as service
from core.settings import Settings

DEFAULT_PORT = 8026


def command_line(port: int = DEFAULT_PORT, delay: float = 1.0, mix: str | None = None, secret: str = "",
                 data_dir: Path | None = None, host: str = "127.0.0.1", seed: int | None = None,
                 secret_file: Path | None = None) -> list[str]:
    """The argv that runs the simulator as a subprocess (for `up`, `demo` and the benches).

    Prefer `secret_file` to `secret`: a secret in argv is visible to every local user through `ps`.
    """
    argv = [sys.executable, "-m", "core.simulator", "--host", host, "--port", str(port), "--delay", str(delay)]
    for flag, value in (("--mix", mix), ("--secret", secret), ("--secret-file", secret_file),
                        ("--data-dir", data_dir), ("--seed", seed)):
        if value not in (None, ""):
            argv += [flag, str(value)]
    return argv


@click.command(add_help_option=False, context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def simulator(args: tuple[str, ...]) -> None:
    """Run the carrier simulator: accepts sends, posts signed delivery reports back (see --help)."""
    argv = list(args)
    wants_help = "-h" in argv or "--help" in argv
    if not wants_help and not any(a == "--data-dir" or a.startswith("--data-dir=") for a in argv):
        argv += ["--data-dir", str(Settings.from_env().data_dir / "simulator")]
    service.main(argv)


COMMANDS = [simulator]
