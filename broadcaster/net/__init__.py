"""Outbound HTTP shared by the gateway adapters and the client webhooks: the retry policy
(``retry``) and the SSRF guard for URLs that users give us (``guard``)."""
