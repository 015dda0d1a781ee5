"""``python -m broadcaster.simulator``: the carrier simulator alone (see ``--help``)."""

from broadcaster.simulator.cli import main

raise SystemExit(main())
