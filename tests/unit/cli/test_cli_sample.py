"""The demo's sample file ships with the package where ``broadcaster demo`` looks for it."""

from __future__ import annotations

from broadcaster.cli import run


def test_the_demo_sample_is_where_the_demo_reads_it() -> None:
    # It moved once with the CLI (cli_run.py -> cli/run.py) and the demo failed on a clean clone.
    assert run.SAMPLE.is_file(), run.SAMPLE
    assert run.SAMPLE.read_text().splitlines()[0].startswith("phone")
