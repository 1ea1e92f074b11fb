"""The carrier simulator's settings: SimulatorConfig, the status mix, `/config` changes and the command-line options."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("DELIVERED", "UNDELIVERED", "EXPIRED", "ERROR")
CODES = {"DELIVERED": 0, "UNDELIVERED": 27, "EXPIRED": 408, "ERROR": 1}
DEFAULT_MIX = {"DELIVERED": 0.9, "UNDELIVERED": 0.04, "EXPIRED": 0.02, "ERROR": 0.04}
CHANGEABLE = {"delay", "mix", "click_rate", "reply_rate", "click_base", "inbound_url"}  # through POST /config


@dataclass(frozen=True)
class SimulatorConfig:
    delay: float = 1.0  # seconds from acceptance to the delivery report
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))  # status → weight
    secret: str = ""  # bearer for every endpoint, and the key that signs reports and replies
    data_dir: Path | None = None  # where received.jsonl goes; None keeps it in memory only
    seed: int | None = None  # the same seed gives the same status for the n-th accepted message
    click_rate: float = 0.0  # share of delivered messages whose links get opened
    click_base: str | None = None  # e.g. http://127.0.0.1:8000: clicks go here, keeping path and Host
    reply_rate: float = 0.0  # share of delivered messages that get a reply
    inbound_url: str | None = None  # where replies are POSTed
    callback_workers: int = 4  # report batches POSTed at once, as a carrier's callback senders do


def parse_mix(text: str | Mapping[str, Any]) -> dict[str, float]:
    """`delivered=0.9,error=0.1` (or a mapping) → normalised weights; ValueError on anything else."""
    pairs = text.items() if isinstance(text, Mapping) else (p.split("=", 1) for p in text.split(",") if p.strip())
    mix: dict[str, float] = {}
    for name, weight in pairs:
        status = str(name).strip().upper()
        if status not in STATUSES:
            raise ValueError(f"unknown status {name!r} in mix; use {', '.join(s.lower() for s in STATUSES)}")
        mix[status] = float(weight)
        if mix[status] < 0:
            raise ValueError(f"mix weight of {name} is negative")
    total = sum(mix.values())
    if total <= 0:
        raise ValueError("the mix needs at least one positive weight")
    return {status: weight / total for status, weight in mix.items()}


def check_changes(changes: Any) -> dict[str, Any]:
    """The body of `POST /config`, checked, with its mix normalised; ValueError on anything else."""
    if not isinstance(changes, dict):
        raise ValueError("expected a JSON object of settings")
    unknown = set(changes) - CHANGEABLE
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    if "mix" in changes:
        changes = {**changes, "mix": parse_mix(changes["mix"])}
    for name in ("delay", "click_rate", "reply_rate"):
        if name in changes and float(changes[name]) < 0:
            raise ValueError(f"{name} must not be negative")
    return changes


def changeable(cfg: SimulatorConfig) -> dict[str, Any]:
    """The settings `POST /config` can change, as it answers them."""
    return {"delay": cfg.delay, "mix": dict(cfg.mix), "click_rate": cfg.click_rate, "reply_rate": cfg.reply_rate,
            "click_base": cfg.click_base, "inbound_url": cfg.inbound_url}


def _mix_arg(text: str) -> dict[str, float]:
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate_arg(text: str) -> float:
    if not 0 <= float(text) <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return float(text)


def _workers_arg(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number from 1 to 64")
    return int(text)


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsconnect simulator", description="Run the carrier simulator: it "
                                     "accepts sends and posts signed delivery reports back. Ctrl-C stops it.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds from acceptance to the report (1.0)")
    parser.add_argument("--mix", type=_mix_arg, default=DEFAULT_MIX,
                        help="report statuses by weight (delivered=0.9,undelivered=0.04,expired=0.02,error=0.04)")
    parser.add_argument("--secret", help="bearer for every request and the report signing key (default: random)")
    parser.add_argument("--secret-file", type=Path, help="read the secret from this file (keeps it out of `ps`)")
    parser.add_argument("--data-dir", type=Path, help="where received.jsonl is kept")
    parser.add_argument("--seed", type=int, help="makes the drawn statuses repeatable")
    parser.add_argument("--click-rate", type=_rate_arg, default=0.0, help="share of delivered messages clicked")
    parser.add_argument("--click-base", help="base URL the clicks go to, e.g. http://127.0.0.1:8000")
    parser.add_argument("--reply-rate", type=_rate_arg, default=0.0, help="share of delivered messages replied")
    parser.add_argument("--inbound-url", help="where replies are POSTed")
    parser.add_argument("--callback-workers", type=_workers_arg, default=4,
                        help="report batches POSTed at once (4), as a carrier's callback senders do")
    return parser


def from_arguments(args: argparse.Namespace) -> SimulatorConfig:
    """The config of parsed `arguments()`. With neither --secret nor --secret-file the secret is random, and
    printed to stderr; a negative delay counts as 0."""
    if args.secret_file is not None:
        args.secret = args.secret_file.read_text().strip()
    if args.secret is None:
        args.secret = secrets.token_urlsafe(24)
        print(f"simulator secret: {args.secret}", file=sys.stderr, flush=True)
    return SimulatorConfig(delay=max(0.0, args.delay), mix=args.mix, secret=args.secret, data_dir=args.data_dir,
                           seed=args.seed, click_rate=args.click_rate, click_base=args.click_base,
                           reply_rate=args.reply_rate, inbound_url=args.inbound_url,
                           callback_workers=args.callback_workers)
