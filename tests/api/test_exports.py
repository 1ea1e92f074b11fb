"""CSV export: streamed, escaped against formula injection, and importable back unchanged."""

from __future__ import annotations

import csv
import io

from core.exports import escape_cell
from tests.api.test_imports import contacts_of, run
from tests.factories import Tenant


def test_cells_starting_with_formula_characters_are_escaped():
    assert [escape_cell(v) for v in ["=SUM(A1)", "+1", "-2", "@x", "plain", None, 5]] == [
        "'=SUM(A1)", "'+1", "'-2", "'@x", "plain", "", "5"]


def test_export_streams_csv_with_chosen_attributes(client, rt):
    t = Tenant(rt, client)
    t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200", "attributes": {"first_name": "=HYPERLINK(1)"}})
    t.call("POST", "/api/v1/contacts", json={"phone": "+48600100201", "attributes": {"city": "Łódź"}})
    response = t.call("GET", "/api/v1/contacts/export.csv?attributes=first_name,city", "viewer")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["phone", "status", "created_at", "updated_at", "first_name", "city"]
    assert rows[1][0] == "'+48600100200" and rows[1][4] == "'=HYPERLINK(1)"
    assert rows[2][5] == "Łódź"


def test_export_skips_deleted_unless_asked_and_filters_by_segment(client, rt):
    t = Tenant(rt, client)
    a = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200", "attributes": {"city": "Kraków"}}).json
    t.call("POST", "/api/v1/contacts", json={"phone": "+48600100201", "attributes": {"city": "Gdańsk"}})
    t.call("DELETE", f"/api/v1/contacts/{a['id']}")
    assert "600100200" not in t.call("GET", "/api/v1/contacts/export.csv").get_data(as_text=True)
    assert "600100200" in t.call("GET", "/api/v1/contacts/export.csv?include_deleted=true").get_data(as_text=True)
    seg = t.call("POST", "/api/v1/segments", json={"name": "G", "filter": {"attr": "city", "value": "Gdańsk"}}).json
    body = t.call("GET", f"/api/v1/contacts/export.csv?segment_id={seg['id']}").get_data(as_text=True)
    assert body.count("\n") == 2 and "600100201" in body


def test_export_imports_back_unchanged(client, rt, run_jobs):
    source, target = Tenant(rt, client, "S"), Tenant(rt, client, "T")
    for i, name in enumerate(["=cmd|' /C calc'!A0", "-minus", "Zoë"]):
        source.call("POST", "/api/v1/contacts", json={"phone": f"+4860010020{i}", "attributes": {"first_name": name}})
    exported = source.call("GET", "/api/v1/contacts/export.csv?attributes=first_name").get_data()
    run(target, run_jobs, exported, mapping={"phone": "phone", "first_name": "first_name"})
    assert {p: c["attributes"]["first_name"] for p, c in contacts_of(target).items()} == {
        "+48600100200": "=cmd|' /C calc'!A0", "+48600100201": "-minus", "+48600100202": "Zoë"}
