"""``broadcaster lists list|create|delete`` and ``broadcaster templates list|create|get|delete``:
the HTTP API's bodies on ``--json``, tables without it, ``--workspace`` walls (issue 18 showing
issue 15's lists and prepared messages on the command line)."""

from __future__ import annotations

from broadcaster.cli._output import EXIT_INPUT, EXIT_NOT_FOUND

A, B = "+48505606707", "+48505606708"


def test_lists_count_members_per_workspace(run, tmp_path) -> None:
    f = tmp_path / "people.csv"
    f.write_text(f"phone,first_name\n{A},Ana\n{B},Bob\n")
    run("contacts", "import", str(f), "--list", "vip", "--workspace", "acme")
    made = run("lists", "create", "empty", "--workspace", "acme", "--json")
    page = run("lists", "list", "--workspace", "acme", "--json")
    assert [(i["name"], i["members"]) for i in page["items"]] == [("vip", 2), ("empty", 0)]
    assert page["nextCursor"] is None
    assert run("lists", "list", "--workspace", "globex", "--json")["items"] == []
    table = run("lists", "list", "--workspace", "acme")
    assert "vip" in table and "{" not in table
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in table.splitlines()]
    assert [c[1:3] for c in cells if "vip" in c] == [["vip", "2"]]
    # paging by id
    first = run("lists", "list", "--workspace", "acme", "--limit", "1", "--json")
    assert len(first["items"]) == 1 and first["nextCursor"] is not None
    assert f"--cursor {first['nextCursor']}" in run(
        "lists", "list", "--workspace", "acme", "--limit", "1"
    )
    # the cursor is GET /v1/lists' own, taken back by --cursor
    rest = run("lists", "list", "--workspace", "acme", "--cursor", first["nextCursor"], "--json")
    assert [i["name"] for i in rest["items"]] == ["empty"] and rest["nextCursor"] is None
    # another workspace's list is not found; deleting keeps the contacts
    run("lists", "delete", str(made["id"]), "--workspace", "globex", code=EXIT_NOT_FOUND)
    vip = page["items"][0]["id"]
    assert "contacts stay" in run("lists", "delete", str(vip), "--workspace", "acme")
    assert len(run("contacts", "list", "--workspace", "acme", "--json")["items"]) == 2
    assert run("lists", "create", " ", "--workspace", "acme", code=EXIT_INPUT)


def test_templates_create_list_get_delete(run) -> None:
    run("codes", "add", "55501", "--kind", "short", "--workspace", "acme")
    made = run(
        "templates", "create", "otp", "--text", "Hi {first_name}, code {0}",
        "--from", "55501", "--list", "otp", "--workspace", "acme", "--json",
    )  # fmt: skip
    assert (made["name"], made["from"], made["list"]) == ("otp", "55501", "otp")
    listed = run("templates", "list", "--workspace", "acme", "--json")
    assert [t["id"] for t in listed["items"]] == [made["id"]]
    assert run("templates", "list", "--workspace", "globex", "--json")["items"] == []
    table = run("templates", "list", "--workspace", "acme")
    assert "Hi {first_name}, code {0}" in table and "otp" in table
    assert "55501" in run("templates", "get", str(made["id"]), "--workspace", "acme")
    run("templates", "get", str(made["id"]), "--workspace", "globex", code=EXIT_NOT_FOUND)
    run("templates", "delete", str(made["id"]), "--workspace", "globex", code=EXIT_NOT_FOUND)
    run("templates", "delete", str(made["id"]), "--workspace", "acme")
    run("templates", "get", str(made["id"]), "--workspace", "acme", code=EXIT_NOT_FOUND)
    # a sender code the workspace does not have: refused in one line
    out = run(
        "templates", "create", "x", "--text", "Hi", "--from", "99999", "--workspace", "acme",
        code=EXIT_INPUT,
    )  # fmt: skip
    assert "99999" in out and "Traceback" not in out
