from __future__ import annotations

import pytest

from core import bulk, db
from core.models import Workspace
from core.runtime import Runtime
from tests.factories import make_workspace


def _name(rt: Runtime, workspace_id: int) -> str:
    with rt.sessions() as session:
        found = session.get(Workspace, workspace_id)
        assert found is not None
        return found.name


def test_a_bulk_update_rolls_back_with_its_transaction(rt: Runtime) -> None:
    # On SQLite the driver left a statement starting with WITH outside the transaction: it was kept on error.
    ws = make_workspace(rt, "Before")
    with pytest.raises(RuntimeError), db.transaction(rt.sessions) as session:
        bulk.update_from_rows(session, Workspace.__table__, "id", ("id", "name"), [(ws.id, "After")],
                              "name = new.name")
        raise RuntimeError("the rest of the transaction failed")
    assert _name(rt, ws.id) == "Before"


def test_a_bulk_update_commits_with_its_transaction(rt: Runtime) -> None:
    ws = make_workspace(rt, "Before")
    with db.transaction(rt.sessions) as session:
        bulk.update_from_rows(session, Workspace.__table__, "id", ("id", "name"), [(ws.id, "After")],
                              "name = new.name")
    assert _name(rt, ws.id) == "After"
