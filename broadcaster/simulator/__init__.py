"""The carrier simulator: a Messangi-compatible gateway with faults on demand, its own program.

``app`` serves the HTTP API and the ``/_sim`` control API, ``config`` holds the knobs, ``store``
the accepted messages and counters, ``receipts`` the delivery receipts it posts back, ``cli`` the
command line (``python -m broadcaster.simulator``, ``broadcaster simulator``). Broadcaster talks
to it through the Messangi adapter (providers/messangi.py), like to any gateway.
"""
