"""``POST /v1/contacts/import``: a file uploaded as multipart, upserted into a list with the
counts and row errors of ``broadcaster contacts import``; the upload limits of broadcast
uploads; walls between workspaces (issue 15). Both backends."""

from __future__ import annotations

import aiohttp
import pytest

from broadcaster.api.limits import ApiLimits
from tests.support.api import form

CSV = b"phone,first_name,email\n+48505606707,Ana,ana@example.org\n12,Bad,\n+48505606708,Bob,\n"


@pytest.fixture
async def api2(make_api, database_url):
    return await make_api(database_url)


async def _import(api, data=CSV, status=200, workspace="acme", filename="people.csv", **fields):
    return await api.json(
        "POST", "/v1/contacts/import", status, workspace, data=form(data, filename, **fields)
    )


async def test_an_upload_is_imported_into_a_list_with_row_errors(api2):
    report = await _import(api2, list="vip")
    assert report["source"] == "people.csv" and report["list"] == "vip"
    assert (report["read"], report["created"], report["updated"]) == (3, 2, 0)
    assert report["invalidRows"] == 1 and report["members"] == 2
    assert report["errors"][0]["line"] == 3 and "MOBILE" in report["errors"][0]["reason"]
    page = await api2.json("GET", "/v1/contacts?list=vip", 200)
    ana = next(c for c in page["items"] if c["attributes"]["first_name"] == "Ana")
    assert {"type": "EMAIL", "value": "ana@example.org"} in ana["identifiers"]
    # Again, matched by MOBILE: updated, not created.
    again = await _import(api2, list="vip")
    assert (again["created"], again["updated"], again["members"]) == (0, 2, 2)


async def test_no_list_named_imports_contacts_into_no_list(api):
    report = await _import(api)
    assert report["list"] is None and report["members"] == 0 and report["created"] == 2
    page = await api.json("GET", "/v1/contacts", 200)
    assert [c["lists"] for c in page["items"]] == [[], []]


async def test_a_headerless_upload_names_its_cells_with_columns(api):
    data = b"+48505606707,Ana,crm-1\n+48505606708,Bob,crm-2\n"
    refused = await _import(api, data, 422, list="x")
    assert "--columns" in refused["detail"] or "columns" in refused["detail"]
    report = await _import(api, data, list="x", columns="first_name,external", by="EXTERNAL")
    assert report["created"] == 2
    got = await api.json("GET", "/v1/contacts?external=crm-2", 200)
    assert got["items"][0]["attributes"] == {"first_name": "Bob"}


async def test_bad_fields_and_bodies_are_refused(api):
    assert (await _import(api, status=422, by="EMAIL"))["field"] == "by"
    assert (await _import(api, status=422, region="XX"))["field"] == "region"
    assert (await _import(api, b"phone,first name!\n+48505606707,x\n", 422))["detail"]
    await _import(api, status=415, filename="people.exe")
    not_form = await api.json(
        "POST", "/v1/contacts/import", 415, data=b"<p>", headers={"Content-Type": "text/html"}
    )
    assert not_form["field"] == "Content-Type"
    # a JSON body is a JSON recipient file: one of another shape is refused as the file is
    not_list = await api.json("POST", "/v1/contacts/import", 422, json={"list": "x"})
    assert "JSON must be a list" in not_list["detail"]
    f = aiohttp.FormData()
    f.add_field("list", "vip")
    f.add_field("other", b"x", filename="x.csv")
    assert (await api.json("POST", "/v1/contacts/import", 422, data=f))["field"] == "file"
    assert (await api.json("GET", "/v1/contacts", 200))["items"] == []


async def test_the_broadcast_upload_limit_holds(make_api):
    api = await make_api(limits=ApiLimits(upload_max_bytes=40))
    body = await _import(api, status=413, list="vip")
    assert "upload limit" in body["detail"]
    assert (await api.json("GET", "/v1/contacts", 200))["items"] == []


async def test_imports_stay_in_their_workspace(api2):
    await _import(api2, list="vip")
    theirs = await _import(api2, workspace="globex", list="vip")
    # The same numbers are new contacts of globex, in globex's own list "vip".
    assert (theirs["created"], theirs["updated"], theirs["members"]) == (2, 0, 2)
    ours = await api2.json("GET", "/v1/contacts?list=vip", 200)
    others = await api2.json("GET", "/v1/contacts?list=vip", 200, "globex")
    assert not {c["contactID"] for c in ours["items"]} & {c["contactID"] for c in others["items"]}
    again = await _import(api2, workspace="globex", list="vip")
    assert (again["created"], again["updated"]) == (0, 2)
    assert len((await api2.json("GET", "/v1/contacts", 200))["items"]) == 2


async def _raw(api, data, content_type, status=200, workspace="acme", query=""):
    return await api.json(
        "POST",
        f"/v1/contacts/import{query}",
        status,
        workspace,
        data=data,
        headers={"Content-Type": content_type},
    )


async def test_the_file_may_be_the_whole_body(api2):
    """As /v1/broadcasts takes its recipients in the body, an import takes the file as the body
    (``Content-Type: text/csv``, XLSX, JSON, …), its fields in the query: the same readers,
    counts and row errors as the multipart upload."""
    report = await _raw(api2, CSV, "text/csv", query="?list=vip&name=people.csv")
    assert report["source"] == "people.csv" and report["list"] == "vip"
    assert (report["read"], report["created"], report["invalidRows"], report["members"]) == (
        3,
        2,
        1,
        2,
    )
    assert report["errors"][0]["line"] == 3 and "MOBILE" in report["errors"][0]["reason"]
    page = await api2.json("GET", "/v1/contacts?list=vip", 200)
    assert sorted(c["attributes"]["first_name"] for c in page["items"]) == ["Ana", "Bob"]
    # a JSON recipient document, its cells named by ?columns=, matched by EXTERNAL
    doc = b'[{"phone": "+48505606709", "params": ["Cy", "crm-9"]}]'
    got = await _raw(
        api2, doc, "application/json", query="?list=vip&columns=first_name,external&by=EXTERNAL"
    )
    assert (got["source"], got["created"], got["members"]) == ("body", 1, 3)
    cy = await api2.json("GET", "/v1/contacts?external=crm-9", 200)
    assert cy["items"][0]["attributes"] == {"first_name": "Cy"}
    # an XLSX body: the same workbook reader
    import io

    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["phone", "first_name"])
    wb.active.append(["+48505606710", "Di"])
    out = io.BytesIO()
    wb.save(out)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = await _raw(api2, out.getvalue(), xlsx, query="?list=vip")
    assert (book["created"], book["members"]) == (1, 4)
    # walls: the same body into globex makes globex's own contacts
    theirs = await _raw(api2, CSV, "text/csv", workspace="globex", query="?list=vip")
    assert (theirs["created"], theirs["members"]) == (2, 2)
    assert len((await api2.json("GET", "/v1/contacts", 200))["items"]) == 4


async def test_a_raw_body_is_refused_whole_with_nothing_stored(make_api):
    api = await make_api(limits=ApiLimits(upload_max_bytes=40))
    big = await _raw(api, CSV, "text/csv", 413, query="?list=vip")
    assert "upload limit" in big["detail"]
    empty = await _raw(api, b"", "text/csv", 422, query="?list=vip")
    assert "empty" in empty["detail"]
    bad = await _raw(api, b"phone,first name!\n+48505606707,x\n", "text/csv", 422)
    assert "first name!" in bad["detail"]
    assert (await _raw(api, CSV[:30], "text/csv", 422, query="?by=EMAIL"))["field"] == "by"
    assert (await api.json("GET", "/v1/contacts", 200))["items"] == []
    assert (await api.json("GET", "/v1/lists", 200))["items"] == []
