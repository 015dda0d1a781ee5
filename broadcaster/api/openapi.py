"""The OpenAPI 3 document of ``GET /openapi.json``, written by hand from small helpers.

It names every route, parameter, body and answer the handlers give (schemathesis checks the two
agree). Limits come from the running app's :class:`ApiLimits`, so the document states the real
page sizes and batch size.
"""

from __future__ import annotations

from typing import Any

from broadcaster.api import seed004_openapi  # seed 004's /rest/api/... (signed URLs, XML)
from broadcaster.api.bodies import (
    MAX_CALLBACK_CHARS,
    MAX_CALLBACKS,
    MAX_PHONE_CHARS,
)
from broadcaster.api.fields import MAX_TEXT_CHARS, NAME_CHARS, SENDER_CHARS
from broadcaster.api.limits import ApiLimits
from broadcaster.api.openapi_contacts import paths as contact_paths
from broadcaster.api.openapi_inbound import paths as inbound_paths
from broadcaster.api.openapi_parts import (
    CURSOR_PARAM,
    ID_PARAM,
    MESSAGE_ID_PARAM,
    Schema,
    answer,
    integer,
    json_body,
    lenient,
    limit_param,
    obj,
    operation,
    ref,
    status_param,
    string,
)
from broadcaster.domain.states import BroadcastStatus, MessageStatus
from broadcaster.services.codes import KINDS
from broadcaster.services.reports import CONTENT_TYPES

LISTED = [s.value for s in BroadcastStatus if s is not BroadcastStatus.DELETED]
MESSAGE_STATES = [s.value for s in MessageStatus]
CALLBACKS = {
    "oneOf": [
        string(MAX_CALLBACK_CHARS * MAX_CALLBACKS),
        {"type": "array", "maxItems": MAX_CALLBACKS, "items": string(MAX_CALLBACK_CHARS)},
    ],
    "description": "Webhook URLs for status changes: a list, or one comma-separated string.",
}
PARAM_VALUE = {"oneOf": [string(1000), {"type": "number"}, {"type": "boolean"}], "nullable": True}
PHONE = {
    "oneOf": [string(MAX_PHONE_CHARS), integer(minimum=0)],
    "description": "A phone number, E.164 preferred; digits may come as a JSON number.",
}
#: Seed 001's client identifiers: stored on the message, echoed in callbacks and reports.
CLIENT_IDS: dict[str, Schema] = {
    "externalId": string(100, description="Your id for the message or its campaign (seed 001)."),
    "clientId": string(100, description="Your id for the recipient (seed 001)."),
}
RECIPIENT = {
    "oneOf": [
        PHONE,
        obj(
            {
                "to": PHONE,
                "params": {
                    "type": "array",
                    "items": PARAM_VALUE,
                    "nullable": True,
                    "description": "Values of {0}, {1}…",
                },
                **CLIENT_IDS,
            },
            ("to",),
        ),
    ]
}
TEXT = string(
    MAX_TEXT_CHARS,
    minLength=1,
    description="Message text; {0}/<0> placeholders in batches and broadcasts.",
)
SENDER = string(
    SENDER_CHARS,
    minLength=1,
    description="A sender code registered in the workspace (GET /v1/codes).",
)
BROADCAST_FIELDS: dict[str, Schema] = {
    "from": SENDER,
    "text": TEXT,
    "name": string(NAME_CHARS),
    "startDate": string(
        40,
        nullable=True,
        description="ISO 8601 or dd-MM-yyyy HH:mm (wall time in "
        "`timezone` without an offset); null or absent: now.",
    ),
    "timezone": string(64, description="IANA zone, default UTC.", example="America/Mexico_City"),
    "region": string(3, description="ISO 3166 region for national numbers, e.g. MX."),
    "requestDR": {"type": "boolean", "default": True},
    "callbacks": CALLBACKS,
    "window": string(
        20,
        description="Quiet hours: send only between HH:MM-HH:MM in each recipient's local time "
        "(the number's zone; `timezone` for numbers of several zones); a start after the end "
        "crosses midnight (21:00-08:00 is the night). Messages outside it wait in QUEUE.",
        example="08:00-21:00",
    ),
    "validity": {
        "oneOf": [
            {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 2_592_000},
            {"type": "string", "maxLength": 20, "example": "2h"},
        ],
        "description": "Seconds, or a duration (90s, 30m, 2h, 1d), from the start: a message "
        "not sent by then ends EXPIRED unsent.",
    },
    **CLIENT_IDS,
}


def schemas(limits: ApiLimits) -> dict[str, Schema]:
    receipt = obj(
        {
            "status": string(),
            "applied": {"type": "boolean"},
            "provider": string(),
            "reportedAt": string(nullable=True),
            "receivedAt": string(nullable=True),
        }
    )
    message_fields = {
        "id": integer(),
        "broadcastId": integer(),
        "to": string(),
        "text": string(),
        "encoding": string(),
        "segments": integer(),
        "status": string(enum=MESSAGE_STATES),
        "attempts": integer(),
        "gatewayId": string(nullable=True),
        "error": string(nullable=True),
        "externalId": string(nullable=True),
        "clientId": string(nullable=True),
        "createdAt": string(nullable=True),
        "sentAt": string(nullable=True),
        "updatedAt": string(nullable=True),
        "receipts": {"type": "array", "items": receipt},
    }
    row_error = obj(
        {"line": integer(nullable=True), "value": string(), "reason": string()},
        ("line", "value", "reason"),
    )
    broadcast = obj(
        {
            "id": integer(),
            "name": string(),
            "shortcode": string(),
            "text": string(),
            "status": string(),
            "statusReason": string(nullable=True),
            "startDate": string(nullable=True),
            "endDate": string(nullable=True),
            "timezone": string(),
            "expectedMessages": integer(),
            "sentMessages": integer(),
            "deliveredMessages": integer(),
            "failedMessages": integer(),
            "invalidRows": integer(),
            "duplicates": integer(),
            "source": string(nullable=True),
            "createdAt": string(nullable=True),
            "startedAt": string(nullable=True),
            "counts": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "Messages per status, counted now.",
            },
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
            "cancelled": integer(description="Messages a stop turned CANCELLED."),
            "retrying": integer(description="QUEUE messages waiting for a retry after a fault."),
            "nextRetryAt": string(nullable=True, description="When the next of them is due."),
            "window": string(nullable=True, description="Quiet hours, HH:MM-HH:MM local time."),
            "validity": {"type": "number", "nullable": True, "description": "Seconds."},
            "expiresAt": string(
                nullable=True, description="The end of the validity: unsent ones EXPIRE then."
            ),
            "waitingForWindow": integer(
                description="QUEUE messages whose recipient's send window is closed now."
            ),
            "nextWindowAt": string(
                nullable=True, description="When the first of them may be sent."
            ),
            "allowedActions": {
                "type": "array",
                "items": string(
                    enum=["suspend", "resume", "stop", "delete", "reschedule", "retry-failed"]
                ),
                "description": "The control actions the broadcast's state allows now "
                "(retry-failed still needs an ERROR or UNDELIV message).",
            },
            "remainingMessages": integer(description="In the list: messages not sent yet."),
            "remainingSegments": integer(description="In the list: their segments."),
            "progress": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "In the list: the share of messages that left the queue.",
            },
            "etaSeconds": integer(
                nullable=True,
                description="In the list: seconds to send the remaining segments at the "
                "code's rate (null when not sending or no rate is known).",
            ),
            "retryOf": integer(
                nullable=True,
                description="The broadcast whose ERROR/UNDELIV messages this one re-sends.",
            ),
            "owner": string(
                nullable=True,
                description="The user recorded as its owner: seed 004's userName "
                "(createBroadcastFromJson); null for broadcasts made otherwise.",
            ),
        },
        ("id", "status", "shortcode", "text", "expectedMessages", "sentMessages"),
    )
    message_item = obj(
        {k: v for k, v in message_fields.items() if k not in ("broadcastId", "text", "receipts")}
        | {"line": integer(nullable=True)},
        ("id", "to", "status"),
    )

    def page(item: str) -> Schema:
        return obj(
            {"items": {"type": "array", "items": ref(item)}, "nextCursor": string(nullable=True)},
            ("items", "nextCursor"),
        )

    out = {
        "Problem": obj(
            {
                "type": string(),
                "title": string(),
                "status": integer(),
                "detail": string(),
                "field": string(description="The input at fault."),
                "messageStatus": string(
                    description="INVALID_ROUTING, CODE_NOT_ALLOWED or "
                    "SEGMENTS_EXCEEDED, as the seeds name them."
                ),
                "file": string(),
                "line": integer(),
                "current": string(),
                "action": string(),
            },
            ("type", "title", "status", "detail"),
        ),
        "Message": obj(message_fields, ("id", "to", "status")),
        "MessageAccepted": {
            "allOf": [
                ref("Message"),
                obj(
                    {
                        "from": string(),
                        "requestDR": {"type": "boolean"},
                        "callbacks": {"type": "array", "items": string()},
                    }
                ),
            ]
        },
        "BatchAccepted": obj(
            {
                "broadcastId": integer(),
                "from": string(),
                "text": string(),
                "status": string(),
                "date": string(nullable=True),
                "ids": {
                    "type": "array",
                    "items": obj(
                        {"id": integer(), "mobile": string(), "status": string()}, ("id", "mobile")
                    ),
                },
                "invalidNumber": {"type": "array", "items": string()},
                "rowErrors": {"type": "array", "items": ref("RowError")},
            },
            ("broadcastId", "ids", "invalidNumber"),
        ),
        "Broadcast": broadcast,
        "BroadcastPage": page("Broadcast"),
        "MessageItem": message_item,
        "MessagePage": page("MessageItem"),
        "RowError": row_error,
        "RowErrorPage": page("RowError"),
        "RecipientMessages": obj(
            {
                "recipient": string(),
                "items": {
                    "type": "array",
                    "items": {
                        "allOf": [
                            ref("MessageItem"),
                            obj({"broadcastId": integer(), "broadcastName": string()}),
                        ]
                    },
                },
                "nextCursor": string(nullable=True),
            },
            ("recipient", "items", "nextCursor"),
        ),
        "DryRun": obj(
            {
                "source": string(),
                "valid": integer(),
                "invalid": integer(),
                "duplicates": integer(),
                "totalSegments": integer(),
                "segmentsExceeded": integer(),
                "blacklisted": integer(description="Valid ones on the opt-out list."),
                "errors": {"type": "array", "items": ref("RowError")},
                "preview": {
                    "type": "array",
                    "items": obj(
                        {"line": integer(nullable=True)}
                        | {
                            k: message_fields[k]
                            for k in ("to", "text", "encoding", "segments", "status")
                        }
                    ),
                },
                "window": string(nullable=True),
                "waitingForWindow": integer(),
                "nextWindowAt": string(nullable=True),
                "zones": {"type": "object", "additionalProperties": {"type": "integer"}},
                "mps": {"type": "number", "nullable": True},
                "etaSeconds": integer(nullable=True),
            },
            ("source", "valid", "invalid", "duplicates", "totalSegments", "etaSeconds"),
        ),
        "Timeline": obj(
            {
                "step": string(enum=["minute", "second"]),
                "buckets": {
                    "type": "array",
                    "items": obj(
                        {
                            "at": string(description="The bucket's start, UTC."),
                            "sent": integer(),
                            "delivered": integer(),
                            "failed": integer(),
                        },
                        ("at", "sent", "delivered", "failed"),
                    ),
                },
                "nextCursor": string(
                    nullable=True,
                    description="Older buckets: pass as ?cursor= (at most 3,600 per answer).",
                ),
            },
            ("step", "buckets"),
        ),
        "Breakdown": obj(
            {
                "byStatus": {"type": "object", "additionalProperties": {"type": "integer"}},
                "byReason": {
                    "type": "array",
                    "items": obj(
                        {
                            "status": string(),
                            "reason": string(nullable=True),
                            "count": integer(),
                        },
                        ("status", "reason", "count"),
                    ),
                },
            },
            ("byStatus", "byReason"),
        ),
        "Deleted": obj(
            {"id": integer(), "status": string(enum=["DELETED"]), "messagesRemoved": integer()},
            ("id", "status"),
        ),
        "SenderCode": obj(
            {
                "code": string(),
                "kind": string(enum=list(KINDS)),
                "mps": {"type": "number"},
                "mps_configured": {"type": "number", "nullable": True},
                "provider": string(),
                "account": string(nullable=True),
            },
            ("code", "kind", "mps"),
        ),
        "CodeList": obj({"items": {"type": "array", "items": ref("SenderCode")}}, ("items",)),
        "SendMessage": obj(
            {
                "from": SENDER,
                "to": string(MAX_PHONE_CHARS, minLength=1),
                "text": TEXT,
                "requestDR": {"type": "boolean", "default": True},
                "callbacks": CALLBACKS,
                "region": BROADCAST_FIELDS["region"],
                **CLIENT_IDS,
            },
            ("from", "to", "text"),
            example={"from": "55501", "to": "+525500000001", "text": "Your code is 1234"},
            description="seed 001 single send; requestDR false asks for no receipt and no callback.",
        ),
        "SendBatch": obj(
            {
                "from": SENDER,
                "text": TEXT,
                "name": string(NAME_CHARS),
                "region": BROADCAST_FIELDS["region"],
                "requestDR": {"type": "boolean"},
                "callbacks": CALLBACKS,
                **CLIENT_IDS,
                "to": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": limits.batch_max_recipients,
                    "items": RECIPIENT,
                },
            },
            ("from", "text", "to"),
            example={
                "from": "55501",
                "text": "Hi {0}, your balance is ${1}",
                "to": [
                    {"to": "+525500000001", "params": ["Elizabeth", 10.65]},
                    {"to": "+525500000002", "params": ["Joshua", 20.5]},
                ],
            },
        ),
        "CreateBroadcast": obj(
            {
                **BROADCAST_FIELDS,
                "recipients": {"type": "array", "minItems": 1, "items": RECIPIENT},
                "list": string(
                    100,
                    minLength=1,
                    description="Instead of recipients: the members of this contact list, "
                    "{name} placeholders filled from their attributes (docs/contacts.md).",
                ),
            },
            ("from", "text"),
            description="seed 004 createBroadcastFromJson; `shortcode` is read as `from`. "
            "Give `recipients` or `list`.",
            example={
                "from": "55501",
                "name": "spring sale",
                "text": "Hi {0}",
                "startDate": "01-03-2031 09:30",
                "timezone": "America/Mexico_City",
                "recipients": [
                    {"to": "+525500000001", "params": ["Ana"]},
                    {"to": "+525500000002", "params": ["Bob"]},
                ],
            },
        ),
        "UploadBroadcast": obj(
            {
                "file": string(
                    format="binary", description="CSV, TXT, TSV, XLSX or JSON recipients."
                ),
                **{
                    k: (
                        string(5, enum=["true", "false"])
                        if k == "requestDR"
                        else string(MAX_CALLBACK_CHARS * MAX_CALLBACKS)
                        if k == "callbacks"
                        else {kk: vv for kk, vv in v.items() if kk != "nullable"}
                    )
                    for k, v in BROADCAST_FIELDS.items()
                },
                "sheet": string(100, description="Worksheet of an XLSX (default: the first)."),
            },
            ("file",),
        ),
        "Control": obj({"reason": string(300)}),
        "RetryFailed": obj({}, description="No fields: the body may be empty."),
        "Reschedule": obj(
            {
                "at": string(
                    40, description="New start, ISO 8601 (or seed 004's dd-MM-yyyy HH:mm)."
                ),
                "timezone": string(
                    64,
                    description="IANA zone of `at` when it has no offset (default: the "
                    "broadcast's own).",
                ),
            },
            ("at",),
            example={"at": "2031-03-01T09:30", "timezone": "America/Mexico_City"},
        ),
        "CodeRemoved": obj(
            {"code": string(), "removed": {"type": "boolean"}, "sharesRemoved": integer()},
            ("code", "removed"),
        ),
        "CreateCode": obj(
            {
                "code": string(SENDER_CHARS, minLength=1),
                "kind": string(enum=list(KINDS)),
                "mps": {
                    "type": "number",
                    "exclusiveMinimum": True,
                    "minimum": 0,
                    "maximum": 100_000,
                },
            },
            ("code", "kind"),
            example={"code": "55777", "kind": "short", "mps": 50},
        ),
    }
    for name in (
        "SendMessage",
        "SendBatch",
        "CreateBroadcast",
        "Control",
        "CreateCode",
        "Reschedule",
    ):
        out[name] = lenient(out[name])
    return out


def _paths(limits: ApiLimits) -> dict[str, Schema]:
    page = [limit_param(limits), CURSOR_PARAM]
    control_body = json_body(ref("Control"), required=False)
    control_errors = (400, 404, 409, 413, 415, 422)

    def control_op(action: str, summary: str) -> Schema:
        return {
            "post": operation(
                f"{action}Broadcast",
                summary,
                {200: answer("The broadcast now.", ref("Broadcast"))},
                control_errors,
                params=[ID_PARAM],
                body=control_body,
            )
        }

    return {
        "/healthz": {
            "get": operation(
                "health",
                "Liveness (no key needed).",
                {200: answer("Up.", obj({"status": string()}, ("status",)))},
                (),
                public=True,
            )
        },
        "/dashboard": {
            "get": operation(
                "dashboard",
                "The dashboard page (no key needed: it calls this API with the key the user pastes).",
                {200: answer("One static HTML page.", string(), "text/html")},
                (),
                public=True,
            )
        },
        "/metrics": {
            "get": operation(
                "metrics",
                "Prometheus metrics of every workspace.",
                {200: answer("Text exposition format.", string(), "text/plain")},
                (403,),
                description=f"Only keys of the `{limits.metrics_workspace}` workspace may read it.",
            )
        },
        "/openapi.json": {
            "get": operation(
                "openapi",
                "This document.",
                {200: answer("OpenAPI 3.0 document.", {"type": "object"})},
                (),
            )
        },
        "/v1/messages": {
            "post": operation(
                "sendMessage",
                "Send one message (seed 001 single send).",
                {202: answer("Queued.", ref("MessageAccepted"))},
                (400, 413, 415, 422),
                body=json_body(ref("SendMessage")),
                description="A bad number answers 422 with messageStatus INVALID_ROUTING; an unregistered "
                "sender code CODE_NOT_ALLOWED; a text over 10 segments SEGMENTS_EXCEEDED.",
            ),
            "get": operation(
                "searchRecipient",
                "One number's messages across the workspace's broadcasts, newest first.",
                {200: answer("A page.", ref("RecipientMessages"))},
                (400, 422),
                params=[
                    {
                        "name": "recipient",
                        "in": "query",
                        "required": True,
                        "schema": string(MAX_PHONE_CHARS, minLength=1),
                        "description": "A phone number, E.164 preferred.",
                    },
                    *page,
                ],
            ),
        },
        "/v1/messages/batch": {
            "post": operation(
                "sendBatch",
                "Send one text with placeholders to many (seed 001 batch).",
                {202: answer("Queued; invalid numbers listed.", ref("BatchAccepted"))},
                (400, 413, 415, 422),
                body=json_body(ref("SendBatch")),
            )
        },
        "/v1/messages/{id}": {
            "get": operation(
                "getMessage",
                "A message's status and receipt history.",
                {200: answer("The message.", ref("Message"))},
                (404,),
                params=[MESSAGE_ID_PARAM],
            )
        },
        "/v1/broadcasts": {
            "post": operation(
                "createBroadcast",
                "Create a broadcast from a JSON list or an uploaded file.",
                {
                    201: answer(
                        "Created (SCHEDULED, or COMPLETED when no row was sendable).",
                        ref("Broadcast"),
                    )
                },
                (400, 413, 415, 422),
                body={
                    "required": True,
                    "content": {
                        "application/json": {"schema": ref("CreateBroadcast")},
                        "multipart/form-data": {"schema": ref("UploadBroadcast")},
                    },
                },
            ),
            "get": operation(
                "listBroadcasts",
                "The workspace's broadcasts, newest first.",
                {200: answer("A page.", ref("BroadcastPage"))},
                (400,),
                params=[*page, status_param(tuple(LISTED))],
            ),
        },
        "/v1/broadcasts/{id}": {
            "get": operation(
                "getBroadcast",
                "A broadcast (seed 004 getBroadcast) with live counts.",
                {200: answer("The broadcast.", ref("Broadcast"))},
                (404,),
                params=[ID_PARAM],
            ),
            "delete": operation(
                "deleteBroadcast",
                "Delete a broadcast that is not RUNNING, with its messages.",
                {200: answer("Deleted.", ref("Deleted"))},
                (404, 409),
                params=[ID_PARAM],
            ),
        },
        "/v1/broadcasts/{id}/suspend": control_op(
            "suspend", "Pause a SCHEDULED or RUNNING broadcast."
        ),
        "/v1/broadcasts/{id}/resume": control_op("resume", "Continue a SUSPENDED broadcast."),
        "/v1/broadcasts/{id}/stop": control_op(
            "stop", "Stop for good; unsent messages end CANCELLED."
        ),
        "/v1/broadcasts/{id}/retry-failed": {
            "post": operation(
                "retryFailedMessages",
                "Re-send the ERROR and UNDELIV messages of a finished broadcast as a new one.",
                {
                    201: answer("The new broadcast (SCHEDULED to start now).", ref("Broadcast")),
                    200: answer(
                        "The same new broadcast, made by an earlier call.", ref("Broadcast")
                    ),
                },
                control_errors,
                params=[ID_PARAM],
                body=json_body(ref("RetryFailed"), required=False),
                description="Exactly once per recipient: the new broadcast records its source "
                "(`retryOf`) and a broadcast has at most one. 409 unless the broadcast is "
                "COMPLETED or STOPPED with at least one ERROR or UNDELIV message; 422 when its "
                "sender code is no longer the workspace's.",
            )
        },
        "/v1/broadcasts/{id}/reschedule": {
            "post": operation(
                "rescheduleBroadcast",
                "Move the start of a SCHEDULED broadcast.",
                {200: answer("The broadcast now.", ref("Broadcast"))},
                control_errors,
                params=[ID_PARAM],
                body=json_body(ref("Reschedule")),
                description="409 unless the broadcast is SCHEDULED; a time over a minute in the "
                "past is refused (422), as when creating one. Stop a SCHEDULED broadcast to "
                "cancel it.",
            )
        },
        "/v1/broadcasts/{id}/messages": {
            "get": operation(
                "listBroadcastMessages",
                "The broadcast's messages in id order.",
                {200: answer("A page.", ref("MessagePage"))},
                (400, 404),
                params=[ID_PARAM, *page, status_param(tuple(MESSAGE_STATES))],
            )
        },
        "/v1/broadcasts/{id}/errors": {
            "get": operation(
                "listBroadcastErrors",
                "Rows of the recipient list that produced no message, in file order.",
                {200: answer("A page.", ref("RowErrorPage"))},
                (400, 404),
                params=[ID_PARAM, *page],
            )
        },
        "/v1/apikeys": {
            "get": operation(
                "listApiKeys",
                "This workspace's API keys by prefix (secrets are never shown).",
                {
                    200: answer(
                        "The keys, oldest first.",
                        obj(
                            {
                                "items": {
                                    "type": "array",
                                    "items": obj(
                                        {
                                            "prefix": string(),
                                            "createdAt": string(nullable=True),
                                            "revokedAt": string(nullable=True),
                                            "signing": {"type": "boolean"},
                                            "current": {
                                                "type": "boolean",
                                                "description": "The key of this request.",
                                            },
                                        },
                                        ("prefix", "createdAt", "revokedAt", "signing"),
                                    ),
                                }
                            },
                            ("items",),
                        ),
                    )
                },
                (),
            ),
            "post": operation(
                "createApiKey",
                "A new key for this workspace: the answer is the only time its secrets are shown. "
                "409 when the workspace has keys_per_workspace live keys (revoke one first).",
                {
                    201: answer(
                        "The new key.",
                        obj(
                            {
                                "prefix": string(),
                                "key": string(),
                                "workspace": string(),
                                "signingSecret": string(nullable=True),
                                "publicKey": string(),
                                "seedSecret": string(),
                                "instanceId": integer(),
                            },
                            ("prefix", "key", "workspace"),
                        ),
                    )
                },
                (400, 409, 413, 415, 422),
                body=json_body(
                    lenient(obj({"signing": {"type": "boolean", "default": False}})),
                    required=False,
                ),
            ),
        },
        "/v1/apikeys/{prefix}": {
            "delete": operation(
                "revokeApiKey",
                "Revoke one of this workspace's keys; it stops working at once (idempotent).",
                {
                    200: answer(
                        "Revoked.",
                        obj(
                            {"prefix": string(), "revokedAt": string(nullable=True)},
                            ("prefix", "revokedAt"),
                        ),
                    )
                },
                (404,),
                params=[
                    {
                        "name": "prefix",
                        "in": "path",
                        "required": True,
                        "schema": string(12, minLength=12, pattern="^[0-9a-f]{12}$"),
                    }
                ],
            )
        },
        "/v1/broadcasts/dry-run": {
            "post": operation(
                "dryRunBroadcast",
                "Check an uploaded recipient file as a broadcast would read it; nothing is stored.",
                {200: answer("What a broadcast of it would hold.", ref("DryRun"))},
                (400, 413, 415, 422),
                body={
                    "required": True,
                    "content": {"multipart/form-data": {"schema": ref("UploadBroadcast")}},
                },
                description="The same dry run as `broadcaster recipients check`: valid, "
                "invalid and duplicate rows, opted-out numbers, segments, the first rendered "
                "messages, and the ETA at the `from` code's rate.",
            )
        },
        "/v1/broadcasts/{id}/timeline": {
            "get": operation(
                "getBroadcastTimeline",
                "Sent, delivered and failed messages per minute or second (empty buckets left out): "
                "the newest 3,600 buckets, older ones by nextCursor.",
                {200: answer("The timeline, oldest bucket first.", ref("Timeline"))},
                (400, 404),
                params=[
                    ID_PARAM,
                    {
                        "name": "step",
                        "in": "query",
                        "required": False,
                        "schema": string(enum=["minute", "second"], default="minute"),
                    },
                    CURSOR_PARAM,
                ],
            )
        },
        "/v1/broadcasts/{id}/breakdown": {
            "get": operation(
                "getBroadcastBreakdown",
                "Messages by status, and the failed ones by status and refusal reason.",
                {200: answer("The breakdown.", ref("Breakdown"))},
                (404,),
                params=[ID_PARAM],
            )
        },
        "/v1/broadcasts/{id}/report": {
            "get": operation(
                "getBroadcastReport",
                "Per-recipient results, streamed as CSV or XLSX.",
                {
                    200: {
                        "description": "The report file.",
                        "content": {
                            CONTENT_TYPES["csv"]: {"schema": string()},
                            CONTENT_TYPES["xlsx"]: {"schema": string(format="binary")},
                        },
                    }
                },
                (400, 404),
                params=[
                    ID_PARAM,
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": string(enum=["csv", "xlsx"], default="csv"),
                    },
                ],
            )
        },
        "/v1/dlr/{provider}": {
            method: operation(
                f"receipt{method.title()}",
                "Delivery receipts from gateways (shared secret, no key).",
                {
                    200: answer(
                        "Stored.",
                        obj(
                            {
                                "applied": {"type": "boolean"},
                                "status": string(nullable=True),
                                "known": {"type": "boolean"},
                            }
                        ),
                    )
                },
                (400, 401, 404),
                public=True,
                params=[
                    {"name": "provider", "in": "path", "required": True, "schema": string(32)},
                    {"name": "secret", "in": "query", "required": True, "schema": string(200)},
                ],
                description="Gateways post JSON or form data, or call with a query string (Kannel); the "
                "receipt URL carries the route's secret (an account's own `dlr_secret`, else the "
                "shared one). A receipt applies only to messages sent through that route; any "
                "other id is answered `known: false`.",
            )
            for method in ("get", "post")
        },
        "/v1/codes": {
            "get": operation(
                "listCodes",
                "The workspace's sender codes (seed 004 getShortcodes).",
                {200: answer("Codes.", ref("CodeList"))},
                (),
            ),
            "post": operation(
                "addCode",
                "Register a new sender code; 409 when it exists or another workspace owns it "
                "(only an operator shares a code).",
                {201: answer("Registered.", ref("SenderCode"))},
                (400, 409, 413, 415, 422),
                body=json_body(ref("CreateCode")),
            ),
        },
        "/v1/codes/{code}": {
            "delete": operation(
                "removeCode",
                "Remove one of the workspace's sender codes.",
                {200: answer("Removed.", ref("CodeRemoved"))},
                (404, 409),
                params=[{"name": "code", "in": "path", "required": True, "schema": string()}],
                description="404 for a code the workspace has not registered; 409 while a "
                "broadcast that is not finished sends from it. The owner removing a code it "
                "shares removes it for those workspaces too.",
            )
        },
    }


def document(limits: ApiLimits) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "broadcaster",
            "version": "1",
            "description": "Bulk SMS broadcasts. Authenticate with `Authorization: Bearer <key>` "
            "(`broadcaster apikey create --workspace W`). Keys created with "
            "`--signing` must also sign requests: X-Timestamp, X-Nonce and "
            "X-Signature (docs/api.md). Errors are RFC 9457 problem documents.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            **_paths(limits),
            **seed004_openapi.paths(),
            **inbound_paths(),
            **contact_paths(limits),
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "bk_<prefix>_<secret>",
                }
            },
            "schemas": schemas(limits),
        },
    }
