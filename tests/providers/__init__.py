"""Tests of core/providers, the simulator service, provider accounts and their API."""

from __future__ import annotations

import requests

from core import providers
from core.providers import OutboundSms, Provider, RetryPolicy

FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.005, connect_timeout=1, read_timeout=2)
CALLBACK = "https://sms.example.com/webhooks/dlr/x/token"


def outbound(count: int = 1, to: str = "+48600100200", sender: str | None = "ACME", text: str = "Hi!",
             start: int = 1) -> list[OutboundSms]:
    return [OutboundSms(i, f"m-{i}", to, sender, text, 1) for i in range(start, start + count)]


def build(name: str, settings: dict[str, object], policy: RetryPolicy = FAST) -> Provider:
    return providers.build(name, settings, requests.Session(), CALLBACK, policy=policy)
