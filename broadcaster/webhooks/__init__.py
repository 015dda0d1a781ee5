"""Outbound client webhooks (seed 001 callbacks): the HTTP transport the callbacks use case
(services/client_callbacks.py) posts through. ``transport`` is the port (no aiohttp), ``http``
the aiohttp adapter whose connections go only where the SSRF guard (broadcaster/net/guard.py)
allows."""
