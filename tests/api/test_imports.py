"""Imports: CSV and .xlsx uploads with a mapping, run by a worker, merged by phone, with a row report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from core import jobs
from tests.factories import Tenant


@pytest.fixture
def t(client, rt) -> Tenant:
    return Tenant(rt, client)


def upload(t: Tenant, content: bytes, name: str = "contacts.csv", mapping: object = None, role: str = "editor"):
    data: dict = {"file": (io.BytesIO(content), name)}
    if mapping is not None:
        data["mapping"] = mapping if isinstance(mapping, str) else json.dumps(mapping)
    return t.call("POST", "/api/v1/imports", role, data=data, content_type="multipart/form-data")


def run(t: Tenant, run_jobs, content: bytes, name: str = "contacts.csv", mapping: object = None) -> dict:
    response = upload(t, content, name, mapping)
    assert response.status_code == 202, response.json
    assert response.json["status"] == "queued"
    run_jobs()
    return t.call("GET", f"/api/v1/imports/{response.json['id']}", "viewer").json


def contacts_of(t: Tenant) -> dict[str, dict]:
    items = t.call("GET", "/api/v1/contacts?page_size=1000").json["items"]
    return {c["phone"]: c for c in items}


CSV = (
    "Mobile,Name,City,Marketing,Tags\n"
    "+48 600 100 200,Anna,Kraków,yes,vip;b2c\n"
    "0048600100201,Piotr,Gdańsk,no,\n"
    "600100202,Zofia,,1,b2c\n"
)
MAP = {"phone": "Mobile", "first_name": "Name", "city": "City", "consent.marketing": "Marketing", "tags": "Tags"}


def test_csv_import_with_mapping_creates_contacts(t, run_jobs):
    report = run(t, run_jobs, CSV.encode(), mapping=MAP)
    assert report["status"] == "finished" and report["progress"] == 1.0
    assert (report["rows_total"], report["rows_created"], report["rows_failed"]) == (3, 3, 0)
    people = contacts_of(t)
    assert set(people) == {"+48600100200", "+48600100201", "+48600100202"}
    anna = people["+48600100200"]
    assert anna["attributes"] == {"first_name": "Anna", "city": "Kraków"}
    assert anna["consents"]["marketing"]["opted_in"] is True
    assert anna["consents"]["marketing"]["source"] == "import"
    assert anna["tags"] == ["b2c", "vip"]
    assert people["+48600100201"]["consents"]["marketing"]["opted_in"] is False
    assert "city" not in people["+48600100202"]["attributes"]  # empty cells set nothing


def test_cli_style_mapping_string_is_accepted(t, run_jobs):
    report = run(t, run_jobs, CSV.encode(), mapping="phone=Mobile,first_name=Name")
    assert report["rows_created"] == 3
    assert contacts_of(t)["+48600100201"]["attributes"] == {"first_name": "Piotr"}


def test_without_mapping_phone_column_is_found_and_others_become_attributes(t, run_jobs):
    run(t, run_jobs, b"Phone,First Name,city\n600100200,Ola,Lublin\n")
    assert contacts_of(t)["+48600100200"]["attributes"] == {"first_name": "Ola", "city": "Lublin"}


def test_bad_rows_are_reported_with_line_column_and_reason(t, run_jobs):
    content = "Mobile,Name\n600100200,Anna\n12345,Bad\n,Empty\n600100201,Too,Many\n600100203,Ok\n"
    report = run(t, run_jobs, content.encode(), mapping={"phone": "Mobile", "first_name": "Name"})
    assert (report["rows_total"], report["rows_created"], report["rows_failed"]) == (5, 2, 3)
    errors = t.call("GET", f"/api/v1/imports/{report['id']}/errors").json["items"]
    by_line = {e["line"]: e for e in errors}
    assert by_line[3]["column"] == "Mobile" and by_line[3]["value"] == "12345"
    assert "not a valid phone" in by_line[3]["reason"]
    assert "empty" in by_line[4]["reason"]
    assert "3 fields" in by_line[5]["reason"] and by_line[5]["column"] is None
    assert set(contacts_of(t)) == {"+48600100200", "+48600100203"}


def test_duplicate_phones_merge_into_one_contact_with_a_warning(t, run_jobs):
    content = "Mobile,Name,City\n600100200,Anna,\n+48600100200,,Kraków\n0048 600 100 200,Anka,\n"
    report = run(t, run_jobs, content.encode(), mapping={"phone": "Mobile", "first_name": "Name", "city": "City"})
    assert (report["rows_created"], report["rows_duplicate"], report["rows_failed"]) == (1, 2, 0)
    assert contacts_of(t)["+48600100200"]["attributes"] == {"first_name": "Anka", "city": "Kraków"}
    warnings = t.call("GET", f"/api/v1/imports/{report['id']}/errors").json["items"]
    assert [w["line"] for w in warnings] == [3, 4]
    assert all(w["severity"] == "warning" and "line 2" in w["reason"] for w in warnings)


def test_duplicates_across_batches_are_reported_too(t, run_jobs, settings):
    rows = [f"6001{i:05d}" for i in range(settings.import_batch_rows + 5)] + ["600100003"]
    report = run(t, run_jobs, ("phone\n" + "\n".join(rows) + "\n").encode())
    assert report["rows_created"] == settings.import_batch_rows + 5
    assert report["rows_duplicate"] == 1


def test_reimport_updates_instead_of_duplicating(t, run_jobs):
    first = run(t, run_jobs, CSV.encode(), mapping=MAP)
    second = run(t, run_jobs, CSV.replace("Anna", "Anna Maria").encode(), mapping=MAP)
    assert (first["rows_created"], second["rows_created"], second["rows_updated"]) == (3, 0, 3)
    assert second["rows_duplicate"] == 0
    people = contacts_of(t)
    assert len(people) == 3 and people["+48600100200"]["attributes"]["first_name"] == "Anna Maria"


def test_rerunning_the_same_import_job_creates_no_duplicates(t, run_jobs):
    report = run(t, run_jobs, CSV.encode(), mapping=MAP)
    jobs.run_import(report["id"])  # as a retry after a crash would
    again = t.call("GET", f"/api/v1/imports/{report['id']}").json
    assert again["status"] == "finished"
    assert (again["rows_total"], again["rows_created"], again["rows_updated"], again["rows_duplicate"]) == (3, 0, 3, 0)
    assert t.call("GET", "/api/v1/contacts").json["total"] == 3


def test_cp1250_file_imports_with_polish_letters(t, run_jobs):
    content = "Mobile;Name;City\n600100200;Łukasz;Łódź\n600100201;Zażółć;Gęślą\n".encode("cp1250")
    report = run(t, run_jobs, content, mapping={"phone": "Mobile", "first_name": "Name", "city": "City"})
    assert report["encoding"] == "cp1250"
    assert contacts_of(t)["+48600100200"]["attributes"] == {"first_name": "Łukasz", "city": "Łódź"}


def test_utf8_with_bom_imports_and_header_matches(t, run_jobs):
    content = "\ufeffMobile,Name\n600100200,Żaneta\n".encode()
    report = run(t, run_jobs, content, mapping={"phone": "Mobile", "first_name": "Name"})
    assert report["rows_created"] == 1
    assert contacts_of(t)["+48600100200"]["attributes"] == {"first_name": "Żaneta"}


def test_xlsx_import_reads_numbers_and_text(t, run_jobs, tmp_path: Path):
    book = Workbook()
    sheet = book.active
    sheet.append(["Mobile", "Name", "Spent"])
    sheet.append([48600100200, "Anna", 120.5])
    sheet.append(["600 100 201", "Piotr", None])
    sheet.append(["bad", "X", 1])
    path = tmp_path / "c.xlsx"
    book.save(path)
    report = run(t, run_jobs, path.read_bytes(), "c.xlsx", {"phone": "Mobile", "first_name": "Name", "spent": "Spent"})
    assert (report["rows_created"], report["rows_failed"], report["encoding"]) == (2, 1, "xlsx")
    people = contacts_of(t)
    assert people["+48600100200"]["attributes"] == {"first_name": "Anna", "spent": "120.5"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"\n\n", "empty"), (b"Name,City\nAnna,X\n", "'Mobile'")],
)
def test_unusable_file_fails_with_a_reason_and_writes_nothing(t, run_jobs, content, reason):
    report = run(t, run_jobs, content, mapping={"phone": "Mobile"})
    assert report["status"] == "failed"
    assert reason in report["message"]
    assert t.call("GET", "/api/v1/contacts").json["total"] == 0


def test_broken_xlsx_fails_clearly(t, run_jobs):
    report = run(t, run_jobs, b"PK\x03\x04 not really a zip", "x.xlsx", {"phone": "Mobile"})
    assert report["status"] == "failed" and "xlsx" in report["message"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "contacts.pdf"}, "file"),
        ({"mapping": {"first_name": "Name"}}, "mapping"),
        ({"mapping": "phone"}, "map"),
        ({"mapping": {"phone": "Mobile", "bad name!": "X"}}, "mapping.bad name!"),
    ],
)
def test_bad_upload_is_422_naming_the_field(t, kwargs, field):
    response = upload(t, CSV.encode(), **kwargs)
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


def test_upload_without_file_is_422(t):
    response = t.call("POST", "/api/v1/imports", data={}, content_type="multipart/form-data")
    assert response.status_code == 422


def test_viewer_may_not_import(t):
    assert upload(t, CSV.encode(), role="viewer").status_code == 403


def test_nul_bytes_and_stray_quotes_do_not_stop_the_import(t, run_jobs):
    content = b'phone,name\n600100200,"Anna\n600100201,Piotr\n'
    report = run(t, run_jobs, content)
    assert report["status"] == "finished"
    content = b"phone,name\n600100200,A\x00nna\n600100201,Piotr\n"
    report = run(t, run_jobs, content)
    assert (report["status"], report["rows_failed"]) == ("finished", 1)
    errors = t.call("GET", f"/api/v1/imports/{report['id']}/errors").json["items"]
    assert errors[0]["line"] == 2 and errors[0]["column"] == "name" and "NUL" in errors[0]["reason"]
    assert "+48600100201" in contacts_of(t)


def test_nul_byte_in_an_attribute_is_422(t):
    response = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200", "attributes": {"a": "x\u0000"}})
    assert response.status_code == 422 and "attributes.a" in response.json["errors"]["json"]


def test_two_process_parsing_gives_the_same_result(t, rt, run_jobs, settings, monkeypatch):
    monkeypatch.setattr(rt, "settings", settings.with_overrides(import_parallel_min_rows=0))
    content = "Mobile,Name\n" + "".join(f"6001{i:05d},N{i}\n" for i in range(400)) + "12,bad\n"
    report = run(t, run_jobs, content.encode(), mapping={"phone": "Mobile", "first_name": "Name"})
    assert (report["rows_created"], report["rows_failed"]) == (400, 1)
    assert contacts_of(t)["+48600100399"]["attributes"] == {"first_name": "N399"}
