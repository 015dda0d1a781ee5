"""``--window``, ``--tz`` and ``--validity`` on the command line."""

from __future__ import annotations


def test_create_with_window_and_validity_and_check_dry_run(run, tmp_path):  # noqa: F811
    f = tmp_path / "wide.txt"
    f.write_text("+12125550100\n+14155550100\n+61292345678\n")
    check = run("recipients", "check", str(f), "--window", "08:00-21:00", "--tz", "UTC", "--json")
    assert check["valid"] == 3 and check["window"] == "08:00-21:00"
    assert 0 <= check["waitingForWindow"] <= 3 and sum(check["zones"].values()) == 3
    run("codes", "add", "55501", "--kind", "short")
    made = run(
        "broadcast",
        "create",
        str(f),
        "--from",
        "55501",
        "--text",
        "Hi",
        "--window",
        "21:00-08:00",
        "--validity",
        "2h",
        "--json",
    )
    assert made["window"] == "21:00-08:00" and made["validity"] == 7200.0
    got = run("broadcast", "get", str(made["id"]), "--json")
    assert "waitingForWindow" in got and "nextWindowAt" in got


def test_a_bad_window_is_one_line_and_exit_2(run, tmp_path):  # noqa: F811
    f = tmp_path / "one.txt"
    f.write_text("+12125550100\n")
    out = run("recipients", "check", str(f), "--window", "8-21", code=2)
    assert "is not HH:MM-HH:MM" in out and "Traceback" not in out
