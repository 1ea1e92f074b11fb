"""The campaign state machine: one transition table; an action not allowed in a status is a Conflict (409)."""

from __future__ import annotations

from core.errors import Conflict

DRAFT, PROCESSING, READY, SCHEDULED = "draft", "processing", "ready", "scheduled"
STARTED, SENDING, PAUSED, SUSPENDED = "started", "sending", "paused", "suspended"
ABORTED, REJECTED, FINISHED = "aborted", "rejected", "finished"
STATUSES = (DRAFT, PROCESSING, READY, SCHEDULED, STARTED, SENDING, PAUSED, SUSPENDED, ABORTED, REJECTED, FINISHED)
ENDED = frozenset({ABORTED, FINISHED})
ACTIVE = frozenset({PROCESSING, READY, SCHEDULED, STARTED, SENDING})  # the system is working on it

# (action, from status) -> to status. User actions: submit, edit, pause, resume, abort.
# System actions: prepared, reject, schedule, start, send, suspend, finish.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("submit", DRAFT): PROCESSING,
    ("edit", DRAFT): DRAFT,
    ("edit", REJECTED): DRAFT,
    ("reject", PROCESSING): REJECTED,
    ("prepared", PROCESSING): READY,
    ("schedule", READY): SCHEDULED,
    ("start", READY): STARTED,
    ("start", SCHEDULED): STARTED,
    ("send", STARTED): SENDING,
    ("finish", STARTED): FINISHED,
    ("finish", SENDING): FINISHED,
    **{("pause", s): PAUSED for s in (PROCESSING, READY, SCHEDULED, STARTED, SENDING)},
    **{("suspend", s): SUSPENDED for s in (PROCESSING, READY, SCHEDULED, STARTED, SENDING)},
    # Resume goes back to where the work stands: campaigns.resume_target() picks one of these.
    **{("resume", s): t for s in (PAUSED, SUSPENDED) for t in ("*",)},
    **{("abort", s): ABORTED for s in STATUSES if s not in ENDED},
    # Live changes allowed while the campaign is under way (ratio and throttle only).
    **{("tune", s): s for s in (DRAFT, REJECTED, PROCESSING, READY, SCHEDULED, STARTED, SENDING, PAUSED, SUSPENDED)},
}
RESUME_TARGETS = frozenset({PROCESSING, SCHEDULED, STARTED, SENDING})


def next_status(status: str, action: str, resume_to: str | None = None) -> str:
    """The status after `action`, or Conflict naming why it is not allowed."""
    target = TRANSITIONS.get((action, status))
    if target is None:
        allowed = sorted(a for (a, s) in TRANSITIONS if s == status)
        hint = f"; allowed now: {', '.join(allowed)}" if allowed else ""
        raise Conflict(f"cannot {action} a campaign that is {status}{hint}")
    if target == "*":
        if resume_to not in RESUME_TARGETS:
            raise Conflict(f"cannot resume to {resume_to}")
        return resume_to  # type: ignore[return-value]
    return target


USER_ACTIONS = frozenset({"submit", "edit", "pause", "resume", "abort"})


def allowed_actions(status: str) -> list[str]:
    """What a user may do now (for buttons); system moves are not listed."""
    return sorted({a for (a, s) in TRANSITIONS if s == status and a in USER_ACTIONS})
