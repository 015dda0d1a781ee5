"""Tables. Times are naive UTC everywhere (SQLite has no time zones; one convention for both)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a million-row table.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(128), nullable=False),
    sa.Column("secret", sa.String(128), nullable=True),  # HMAC signing secret, optional
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
    # seed 004 (migration 0014): publicKey in its URLs, and the secret its signatures end with
    sa.Column("public_key", sa.String(40), nullable=True),
    sa.Column("seed_secret", sa.String(64), nullable=True),
    sa.Index("ix_api_keys_public_key", "public_key", unique=True),
)

sender_codes = sa.Table(
    "sender_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    sa.Column("code", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # long | short | alphanumeric
    sa.Column("mps", sa.Float, nullable=True),  # None: the kind's default from settings
    sa.Column("provider", sa.String(32), nullable=True),  # None: settings.provider
    sa.Column("account", sa.String(64), nullable=True),  # provider account, for its own ceiling
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "code", name="uq_sender_codes_workspace_code"),
)

# A sender code string belongs to one workspace (migration 0005): the primary key makes a second
# claim fail even between two concurrent registrations. Other workspaces use it only when an
# operator shares it (``sender_code_shares``).
sender_code_owners = sa.Table(
    "sender_code_owners",
    metadata,
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

sender_code_shares = sa.Table(
    "sender_code_shares",
    metadata,
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

broadcasts = sa.Table(
    "broadcasts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("sender_code", sa.String(20), nullable=False),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_at", sa.DateTime, nullable=False),  # UTC
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("source", sa.String(300), nullable=True),  # file name or "json"/"api"
    sa.Column("expected", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("delivered", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("invalid", sa.Integer, nullable=False, server_default="0"),
    sa.Column("duplicates", sa.Integer, nullable=False, server_default="0"),
    sa.Column("request_dr", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("callbacks", sa.JSON, nullable=True),  # client URLs for status changes
    sa.Column("status_reason", sa.String(300), nullable=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    # Migration 0010: quiet hours (HH:MM-HH:MM in each recipient's local time) with the distinct
    # zones of its messages, and the validity (s from the start) past which unsent ones EXPIRE.
    sa.Column("send_window", sa.String(11), nullable=True),
    sa.Column("validity_s", sa.Float, nullable=True),
    sa.Column("zones", sa.JSON, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=True),
    sa.Column("ended_at", sa.DateTime, nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("owner", sa.String(100), nullable=True),  # seed 004 userName (migration 0014)
    # Migration 0013: a keyword's confirmation (one per inbound message; exempt from opt-outs)
    sa.Column("reply_to_inbound", sa.BigInteger, nullable=True),
    # Migration 0016: the broadcast whose ERROR/UNDELIV messages this one re-sends (one at most)
    sa.Column("retry_of", sa.Integer, nullable=True),
    sa.Index("ix_broadcasts_status_start_at", "status", "start_at"),
    sa.Index("ix_broadcasts_reply_to_inbound", "reply_to_inbound", unique=True),
    sa.Index("ix_broadcasts_retry_of", "retry_of", unique=True),
    sqlite_autoincrement=True,  # ids are never reused after a delete (drop-folder ledger, gateways)
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("broadcast_id", sa.ForeignKey("broadcasts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("line", sa.Integer, nullable=True),
    sa.Column("recipient", sa.String(20), nullable=False),  # E.164 with '+'
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("encoding", sa.String(8), nullable=False),
    sa.Column("segments", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("gateway_id", sa.String(100), nullable=True),
    sa.Column("error", sa.String(300), nullable=True),
    # The routing key (account or provider) that sent it, set at the claim (migration 0005): a
    # receipt applies only when it comes back through the same route.
    sa.Column("route", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.DateTime, nullable=True),  # while DEQUEUED
    sa.Column("dispatched_at", sa.DateTime, nullable=True),  # last time a chunk task carried it
    # Migration 0009: a passing fault sent it back to the queue; not to be claimed before
    # retry_at; retry_since (its first such failure) starts its retry window.
    sa.Column("retry_at", sa.DateTime, nullable=True),
    sa.Column("retry_since", sa.DateTime, nullable=True),
    # Migration 0010: the recipient's IANA zone, set at import for broadcasts with a send window.
    sa.Column("tz", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime, nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=True),
    # the client's own identifiers (seed 001 externalId, clientId), stored and echoed only
    sa.Column("external_id", sa.String(100), nullable=True),
    sa.Column("client_id", sa.String(100), nullable=True),
    sa.UniqueConstraint("broadcast_id", "recipient", name="uq_messages_broadcast_recipient"),
    sa.Index("ix_messages_broadcast_status", "broadcast_id", "status"),
    # sent_at too: the expiry sweep seeks (status, NULL lease, sent_at < cutoff); see migration 0004
    sa.Index("ix_messages_status_lease_sent", "status", "lease_until", "sent_at"),
    sa.Index("ix_messages_gateway_id", "gateway_id"),
    # Only messages that ever waited for a retry: `get` counts them and finds the next one due
    # without reading a million never-retried rows; inserts and healthy sends never touch it.
    sa.Index(
        "ix_messages_broadcast_retry",
        "broadcast_id",
        "retry_at",
        postgresql_where=sa.text("retry_at IS NOT NULL"),
        sqlite_where=sa.text("retry_at IS NOT NULL"),
    ),
    # A message id is the gateway's idempotency key (externalId): it must never be reused.
    sqlite_autoincrement=True,
)

row_errors = sa.Table(
    "row_errors",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("broadcast_id", sa.ForeignKey("broadcasts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("line", sa.Integer, nullable=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Index("ix_row_errors_broadcast", "broadcast_id", "line"),
)

receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.BigInteger, nullable=True),  # None: unknown id, kept for audit
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("gateway_id", sa.String(100), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False),
    sa.Column("reported_at", sa.String(40), nullable=True),  # the gateway's own timestamp text
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("raw", sa.JSON, nullable=True),
    sa.Index("ix_receipts_message", "message_id"),
)

callback_deliveries = sa.Table(
    "callback_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.BigInteger, nullable=False),
    sa.Column("url", sa.String(500), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # message status reported
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("outcome", sa.String(20), nullable=False),  # pending | delivered | failed | refused
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # Outbox (migration 0002): when a pending row is next due; while a worker delivers it, the
    # end of that worker's lease (claiming bumps it, so a second worker cannot claim it too).
    sa.Column("next_attempt_at", sa.DateTime, nullable=True),
    # The JSON body as of the status change, so a later change or a deleted broadcast cannot alter it.
    sa.Column("payload", sa.JSON, nullable=True),
    # One row per (message, status, url): enqueueing the same change twice is a no-op.
    sa.UniqueConstraint(
        "message_id", "status", "url", name="uq_callback_deliveries_message_status_url"
    ),
    # Only pending rows are ever looked up by due time; delivered ones stay out of the index.
    sa.Index(
        "ix_callback_deliveries_due",
        "next_attempt_at",
        postgresql_where=sa.text("outcome = 'pending'"),
        sqlite_where=sa.text("outcome = 'pending'"),
    ),
)

imported_files = sa.Table(
    "imported_files",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("broadcast_id", sa.Integer, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# Nonces of signed requests, remembered past a Redis flush or restart (api/signatures.py).
signed_nonces = sa.Table(
    "signed_nonces",
    metadata,
    sa.Column("key_prefix", sa.String(16), primary_key=True),
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Index("ix_signed_nonces_expires_at", "expires_at"),
)

# Migration 0013: two-way messaging and the suppression list (issue 13).
workspace_settings = sa.Table(
    "workspace_settings",
    metadata,
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    # keyword lists, reply texts, inbound callback URL (services/inbound_settings.py)
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

inbound_messages = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("route", sa.String(64), nullable=False),  # the account or provider it came through
    sa.Column("gateway_id", sa.String(100), nullable=False),
    # the workspace owning the code it was sent to; None: no workspace owns that code
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True),
    sa.Column("sender", sa.String(20), nullable=False),  # the subscriber, E.164
    sa.Column("recipient", sa.String(20), nullable=False),  # our sender code
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("keyword", sa.String(16), nullable=False),  # domain.keywords.Keyword
    sa.Column("reported_at", sa.String(40), nullable=True),  # the gateway's own time text
    sa.Column("received_at", sa.DateTime, nullable=False),
    # a gateway that retries an MO stores nothing new
    sa.UniqueConstraint("route", "gateway_id", name="uq_inbound_messages_route_gateway_id"),
    sa.Index("ix_inbound_messages_workspace_id", "workspace_id", "id"),
    sqlite_autoincrement=True,
)

optouts = sa.Table(
    "optouts",
    metadata,
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("number", sa.String(20), primary_key=True),  # E.164 with '+'
    sa.Column("source", sa.String(16), nullable=False),  # inbound | gateway | operator | import
    sa.Column("detail", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# Migration 0015: contacts, lists and prepared messages (issue 15, seed 003).
contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),  # seed 003's contactID
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    # named values placeholders read ({first_name}); texts only (domain/contacts.py)
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_contacts_workspace_id", "workspace_id", "id"),
    sqlite_autoincrement=True,  # an erased contact's id is never given to someone else
)

# One value per (workspace, type): the primary key is the search by ?mobile= and the upsert key.
# The value leads it: an import's ``value IN (5,000 values)`` is then an index condition, not a
# filter over every MOBILE of the workspace (PostgreSQL chose the latter inside the import).
contact_identifiers = sa.Table(
    "contact_identifiers",
    metadata,
    sa.Column("value", sa.String(254), primary_key=True),  # MOBILE in E.164, EMAIL lower-case
    sa.Column("type", sa.String(16), primary_key=True),  # EMAIL | MOBILE | APP_ALIAS | EXTERNAL
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("contact_id", sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Index("ix_contact_identifiers_contact_id", "contact_id"),
)

contact_lists = sa.Table(
    "contact_lists",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name", name="uq_contact_lists_workspace_name"),
    sqlite_autoincrement=True,
)

list_members = sa.Table(
    "list_members",
    metadata,
    sa.Column("list_id", sa.ForeignKey("contact_lists.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("contact_id", sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("added_at", sa.DateTime, nullable=False),
    sa.Index("ix_list_members_contact_id", "contact_id"),
)

# Seed 003's prepared messages ("templates"): a text with placeholders, a sender code, and the
# list (the seed's "message's group") a sendSingle adds its recipient to.
prepared_messages = sa.Table(
    "prepared_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # seed 003's messageId
    sa.Column("workspace_id", sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("sender_code", sa.String(20), nullable=False),
    sa.Column("list_id", sa.ForeignKey("contact_lists.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_prepared_messages_workspace_id", "workspace_id", "id"),
    sqlite_autoincrement=True,
)
