"""``broadcaster contacts import|list|get|delete`` with ``--json`` (the API's field names),
``--workspace`` walls and one-line refusals with exit codes (issue 15)."""

from __future__ import annotations

from broadcaster.cli._output import EXIT_INPUT, EXIT_NOT_FOUND

A, B = "+48505606707", "+48505606708"


def test_import_list_get_delete(run, tmp_path) -> None:
    f = tmp_path / "people.csv"
    f.write_text(f"phone,first_name,email\n{A},Ana,ana@x.org\n{B},Bob,\n12,Cy,\n")
    report = run("contacts", "import", str(f), "--list", "vip", "--json")
    assert (report["created"], report["updated"], report["invalidRows"], report["members"]) == (
        2,
        0,
        1,
        2,
    )
    assert report["errors"][0]["line"] == 4 and "MOBILE" in report["errors"][0]["reason"]
    page = run("contacts", "list", "--list", "vip", "--json")
    assert [c["attributes"]["first_name"] for c in page["items"]] == ["Ana", "Bob"]
    assert page["nextCursor"] is None
    ana = run("contacts", "list", "--email", "ANA@x.org", "--json")["items"]
    cid = ana[0]["contactID"]
    got = run("contacts", "get", str(cid), "--json")
    assert {"type": "MOBILE", "value": A} in got["identifiers"] and got["lists"] == ["vip"]
    assert "Ana" in run("contacts", "get", str(cid))
    # Another workspace sees none of them.
    other = run("contacts", "list", "--workspace", "other", "--json")
    assert other["items"] == []
    run("contacts", "get", str(cid), "--workspace", "other", code=EXIT_NOT_FOUND)
    run("contacts", "delete", str(cid), "--workspace", "other", code=EXIT_NOT_FOUND)
    erased = run("contacts", "delete", str(cid), "--json")
    assert erased["erased"] is True
    out = run("contacts", "get", str(cid), code=EXIT_NOT_FOUND)
    assert "does not exist" in out
    # The same file again updates Bob and brings Ana back as a new contact.
    again = run("contacts", "import", str(f), "--list", "vip", "--json")
    assert (again["created"], again["updated"]) == (1, 1)


def test_import_refuses_a_file_it_cannot_read(run, tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"phone,first name!\n{A},Ana\n")
    out = run("contacts", "import", str(bad), "--list", "vip", code=EXIT_INPUT)
    assert "bad.csv" in out and "attribute" in out
    missing = run("contacts", "import", str(tmp_path / "none.csv"), "--list", "x", code=EXIT_INPUT)
    assert "none.csv" in missing
    run("contacts", "list", "--mobile", A, "--email", "a@b.co", code=EXIT_INPUT)
    assert run("contacts", "list", "--json")["items"] == []


def test_a_headerless_file_names_its_cells_with_columns(run, tmp_path) -> None:
    f = tmp_path / "plain.txt"
    f.write_text(f"{A}|Ana|gold\n{B}|Bob\n{A[:-1]}9|Cy|silver|extra\n")
    out = run("contacts", "import", str(f), "--list", "vip", code=EXIT_INPUT)
    assert "--columns" in out and "header" in out
    assert run("contacts", "list", "--json")["items"] == []  # all or nothing
    report = run(
        "contacts", "import", str(f), "--list", "vip", "--columns", "first_name,tier", "--json"
    )
    assert (report["created"], report["invalidRows"]) == (2, 1)
    assert "columns names 2" in report["errors"][0]["reason"]
    page = run("contacts", "list", "--list", "vip", "--json")
    assert [c["attributes"] for c in page["items"]] == [
        {"first_name": "Ana", "tier": "gold"},
        {"first_name": "Bob"},
    ]
    # Numbers alone need no names.
    numbers = tmp_path / "numbers.txt"
    numbers.write_text(f"{A}\n{B}\n")
    assert run("contacts", "import", str(numbers), "--list", "all", "--json")["members"] == 2
    header = tmp_path / "h.csv"
    header.write_text(f"phone,name\n{A},Ana\n")
    out = run("contacts", "import", str(header), "--list", "x", "--columns", "a", code=EXIT_INPUT)
    assert "header row" in out


def test_broadcast_create_to_a_list(run, tmp_path) -> None:
    f = tmp_path / "people.csv"
    f.write_text(f"phone,first_name\n{A},Ana\n{B},\n")
    run("contacts", "import", str(f), "--list", "vip", "--json")
    run("codes", "add", "55501", "--kind", "short")
    view = run(
        "broadcast",
        "create",
        "--list",
        "vip",
        "--from",
        "55501",
        "--text",
        "Hi {first_name}",
        "--json",
    )
    assert (view["expectedMessages"], view["invalidRows"], view["source"]) == (1, 1, "list vip")
    out = run("broadcast", "create", "--from", "55501", "--text", "Hi", code=EXIT_INPUT)
    assert "--list" in out
    out = run(
        "broadcast",
        "create",
        "--list",
        "nope",
        "--from",
        "55501",
        "--text",
        "Hi",
        code=EXIT_NOT_FOUND,
    )
    assert "nope" in out


def test_list_pages_with_the_apis_opaque_cursor(run, tmp_path) -> None:
    """``contacts list --json`` prints ``nextCursor`` as GET /v1/contacts does (an opaque text,
    as every other list's), and ``--cursor`` takes it back; ``--after ID`` still pages by id."""
    from broadcaster.domain.wire import decode_cursor, encode_cursor

    f = tmp_path / "three.csv"
    f.write_text(f"phone,first_name\n{A},Ana\n{B},Bob\n+48505606709,Cy\n")
    run("contacts", "import", str(f), "--list", "all", "--json")
    first = run("contacts", "list", "--limit", "2", "--json")
    ids = [c["contactID"] for c in first["items"]]
    assert len(ids) == 2
    assert isinstance(first["nextCursor"], str)
    assert first["nextCursor"] == encode_cursor((ids[-1],))
    assert decode_cursor(first["nextCursor"], (2**63,)) == (ids[-1],)
    rest = run("contacts", "list", "--limit", "2", "--cursor", first["nextCursor"], "--json")
    assert [c["attributes"]["first_name"] for c in rest["items"]] == ["Cy"]
    assert rest["nextCursor"] is None
    by_id = run("contacts", "list", "--after", str(ids[-1]), "--json")
    assert by_id["items"] == rest["items"]
    # the table's hint names the option that takes the cursor
    assert f"--cursor {first['nextCursor']}" in run("contacts", "list", "--limit", "2")
    out = run("contacts", "list", "--cursor", "not-a-cursor", code=EXIT_INPUT)
    assert "not a cursor" in out
