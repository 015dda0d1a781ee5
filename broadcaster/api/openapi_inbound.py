"""OpenAPI paths of ``broadcaster/api/inbound.py`` (merged into ``openapi._paths``)."""

from __future__ import annotations

from typing import Any

from broadcaster.api.openapi_parts import answer, integer, json_body, obj, operation, string

Schema = dict[str, Any]

INBOUND = obj(
    {
        "id": integer(),
        "from": string(20),
        "to": string(20),
        "text": string(),
        "keyword": string(enum=["OPT_OUT", "OPT_IN", "HELP", "OTHER"]),
        "route": string(64),
        "gatewayId": string(100),
        "date": string(),
        "gatewayDate": string(40, nullable=True),
    },
    ("id", "from", "to", "text", "keyword", "route", "gatewayId", "date"),
)
OPTOUT = obj(
    {
        "number": string(20),
        "source": string(enum=["inbound", "gateway", "operator", "import"]),
        "detail": string(200, nullable=True),
        "createdAt": string(),
    },
    ("number", "source", "createdAt"),
)
SETTINGS = obj(
    {
        "keywords": obj(
            {
                k: {"type": "array", "items": string(40), "maxItems": 100}
                for k in ("opt_out", "opt_in", "help")
            },
            additionalProperties=False,
        ),
        "replies": obj(
            {k: string(1530, nullable=True) for k in ("stop_reply", "start_reply", "help_reply")},
            additionalProperties=False,
        ),
        "inbound_callback_url": string(500, nullable=True),
    },
    additionalProperties=False,
)


def _limit(maximum: int) -> Schema:
    return {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": integer(minimum=1, maximum=maximum, default=100),
    }


def paths() -> dict[str, Schema]:
    mo_answer = obj(
        {
            "id": integer(),
            "new": {"type": "boolean"},
            "keyword": string(),
            "known": {"type": "boolean"},
            "replyBroadcastId": integer(nullable=True),
        }
    )
    return {
        "/v1/inbound/{account}": {
            method: operation(
                f"inbound{method.title()}",
                "Inbound (MO) messages from gateways (the route's receipt secret, no key).",
                {200: answer("Stored (or already stored: `new` false).", mo_answer)},
                (400, 401, 404),
                public=True,
                params=[
                    {"name": "account", "in": "path", "required": True, "schema": string(64)},
                    {"name": "secret", "in": "query", "required": True, "schema": string(200)},
                ],
                description="Each route's adapter reads its gateway's MO format (docs/inbound.md). "
                "Stored once per (route, gateway id); a keyword updates the suppression list of the "
                "workspace owning the code and is confirmed once.",
            )
            for method in ("get", "post")
        },
        "/v1/inbound": {
            "get": operation(
                "listInbound",
                "The workspace's inbound messages, newest first.",
                {
                    200: answer(
                        "A page.",
                        obj(
                            {
                                "items": {"type": "array", "items": INBOUND},
                                "next": integer(nullable=True),
                            }
                        ),
                    )
                },
                (400, 422),
                params=[
                    _limit(500),
                    {
                        "name": "before",
                        "in": "query",
                        "required": False,
                        "schema": integer(format="int64", minimum=1, maximum=2**63 - 1),
                    },
                ],
            )
        },
        "/v1/optouts": {
            "get": operation(
                "listOptouts",
                "The workspace's suppression list, by number.",
                {
                    200: answer(
                        "A page.",
                        obj(
                            {
                                "items": {"type": "array", "items": OPTOUT},
                                "next": string(20, nullable=True),
                            }
                        ),
                    )
                },
                (400, 422),
                params=[
                    _limit(1000),
                    {"name": "after", "in": "query", "required": False, "schema": string(20)},
                ],
            ),
            "post": operation(
                "addOptout",
                "Suppress a number (source operator); an existing entry is kept.",
                {201: answer("The entry.", OPTOUT)},
                (400, 413, 415, 422),
                body=json_body(
                    obj(
                        {
                            "number": string(40, minLength=1),
                            "detail": string(200),
                            "region": string(3),
                        },
                        ("number",),
                    )
                ),
            ),
            "delete": operation(
                "removeOptout",
                "Take a number off the suppression list.",
                {204: answer("Removed.")},
                (400, 404, 422),
                params=[
                    {
                        "name": "number",
                        "in": "query",
                        "required": True,
                        "schema": string(40, minLength=1),
                    }
                ],
            ),
        },
        "/v1/optouts.csv": {
            "get": operation(
                "exportOptouts",
                "Every entry as CSV (number,source,detail,created_at).",
                {200: answer("CSV.", string(), "text/csv")},
                (),
            ),
            "post": operation(
                "importOptouts",
                "Add the numbers of a CSV (number[,detail]), all or nothing.",
                {200: answer("Counts.", obj({"read": integer(), "added": integer()}))},
                (400, 413, 422),
                body={"required": True, "content": {"text/csv": {"schema": string()}}},
            ),
        },
        "/v1/inbound-settings": {
            "get": operation(
                "getInboundSettings",
                "Keyword lists, reply texts, inbound callback URL.",
                {200: answer("Settings.", SETTINGS)},
                (),
            ),
            "put": operation(
                "putInboundSettings",
                "Change settings (merged; a key set to null is removed).",
                {200: answer("Settings.", SETTINGS)},
                (400, 413, 415, 422),
                body=json_body(SETTINGS),
            ),
        },
    }
