"""OpenAPI entries of seed 004's routes (``broadcaster/api/seed004.py``): XML in the envelope."""

from __future__ import annotations

from typing import Any

from broadcaster.api.seed004 import ROUTES, path
from broadcaster.api.seed004_xml import CONTENT_TYPE

Schema = dict[str, Any]

#: HTTP statuses a seed-004 call may answer besides 200 (each in the XML envelope).
ERRORS = {
    400: "A path parameter that is not what the seed says (number, date, flag).",
    401: "Unknown publicKey, instanceId not its workspace, or a signature that does not match.",
    404: "No such broadcast in this workspace.",
    409: "A transition the broadcast's state does not allow (or an edit once it started).",
    413: "Over the body or file limit.",
    415: "Not the body type the method takes.",
    422: "A recipient file or list that cannot be used (the description says why).",
    429: "Over the key's request rate.",
}
_XML = {CONTENT_TYPE: {"schema": {"type": "string"}}}
_BODIES: dict[str, Schema] = {
    "tools/sendSMSByFile": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "text": {"type": "string"},
                        "from": {"type": "string"},
                    },
                }
            }
        },
    },
    "createBroadcastFromJson": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["to"],
                    "properties": {"to": {"type": "string"}},
                }
            }
        },
    },
}
_METHOD_NAMES = {
    "tools/sendSMSByFile": "sendSMSByFile",
    "broadcast": "deleteBroadcast",
}


def paths() -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for method, stem, names, _handler in ROUTES:
        params = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in (*names, "signature")
        ]
        responses: Schema = {"200": {"description": "Completed.", "content": _XML}}
        for code, text in ERRORS.items():
            responses[str(code)] = {"description": text, "content": _XML}
        op: Schema = {
            "operationId": "seed004_" + _METHOD_NAMES.get(stem, stem),
            "summary": f"Seed 004 {_METHOD_NAMES.get(stem, stem)} (docs/seed-api.md): signed "
            "URL, XML answer.",
            "parameters": params,
            "responses": responses,
            "security": [],
        }
        if stem in _BODIES:
            op["requestBody"] = _BODIES[stem]
        out.setdefault(path(stem, names), {})[method.lower()] = op
    return out
