"""The campaign state machine: allowed moves, and a Conflict naming the reason otherwise."""

from __future__ import annotations

import pytest

from core import lifecycle
from core.errors import Conflict


@pytest.mark.parametrize(
    ("status", "action", "expected"),
    [
        ("draft", "submit", "processing"),
        ("processing", "prepared", "ready"),
        ("processing", "reject", "rejected"),
        ("ready", "schedule", "scheduled"),
        ("scheduled", "start", "started"),
        ("started", "send", "sending"),
        ("sending", "pause", "paused"),
        ("sending", "suspend", "suspended"),
        ("sending", "finish", "finished"),
        ("rejected", "edit", "draft"),
        ("paused", "abort", "aborted"),
        ("scheduled", "abort", "aborted"),
    ],
)
def test_allowed_moves(status, action, expected):
    assert lifecycle.next_status(status, action) == expected


@pytest.mark.parametrize(
    ("status", "action"),
    [("sending", "edit"), ("finished", "abort"), ("aborted", "resume"), ("draft", "pause"), ("paused", "submit"),
     ("finished", "pause"), ("ready", "finish")],
)
def test_refused_moves_name_the_status_and_what_is_allowed(status, action):
    with pytest.raises(Conflict) as caught:
        lifecycle.next_status(status, action)
    assert f"cannot {action} a campaign that is {status}" in str(caught.value)


def test_resume_goes_where_the_work_stands():
    assert lifecycle.next_status("paused", "resume", "sending") == "sending"
    assert lifecycle.next_status("suspended", "resume", "processing") == "processing"
    with pytest.raises(Conflict):
        lifecycle.next_status("paused", "resume", "finished")


def test_every_status_but_the_ended_ones_can_be_aborted():
    for status in lifecycle.STATUSES:
        if status in lifecycle.ENDED:
            assert "abort" not in lifecycle.allowed_actions(status)
        else:
            assert lifecycle.next_status(status, "abort") == "aborted"
