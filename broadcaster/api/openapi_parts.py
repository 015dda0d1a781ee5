"""The small builders the OpenAPI documents are written from (``openapi``, ``openapi_inbound``,
``openapi_contacts``): schemas, operations, the shared parameters and error answers.

They live apart from ``openapi`` so that the path modules import them without importing the
document, which imports the path modules.
"""

from __future__ import annotations

from typing import Any

from broadcaster.api.bodies import ID64_MAX, INT32_MAX
from broadcaster.api.limits import ApiLimits
from broadcaster.api.problems import PROBLEM_JSON

Schema = dict[str, Any]
_ERRORS = {
    400: "Malformed input (bad JSON, query parameter or cursor).",
    401: "No key, an unknown, malformed or revoked key, or a bad request signature.",
    403: "The key may not use this route.",
    404: "No such resource in this key's workspace.",
    409: "The broadcast's state does not allow this now (or the code exists).",
    413: "The body or uploaded file is over the limit.",
    415: "Unsupported Content-Type (or uploaded file type).",
    422: "Well-formed input with a field that is not acceptable; `field` names it.",
    429: "The key is over its request rate; see Retry-After.",
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def string(max_len: int | None = None, nullable: bool = False, **kw: Any) -> Schema:
    s: Schema = {"type": "string", **kw}
    if max_len is not None:
        s["maxLength"] = max_len
    if nullable:
        s["nullable"] = True
    return s


def integer(nullable: bool = False, **kw: Any) -> Schema:
    return {"type": "integer", **({"nullable": True} if nullable else {}), **kw}


def obj(props: dict[str, Schema], required: tuple[str, ...] = (), **kw: Any) -> Schema:
    s: Schema = {"type": "object", "properties": props, **kw}
    if required:
        s["required"] = list(required)
    return s


def lenient(schema: Schema) -> Schema:
    """A request body's optional members accept null, read as absent (clients often send nulls)."""
    required = set(schema.get("required", ()))
    props = {
        k: (v if k in required else {**v, "nullable": True})
        for k, v in schema["properties"].items()
    }
    return {**schema, "properties": props}


def json_body(schema: Schema, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def answer(
    description: str, schema: Schema | None = None, media: str = "application/json"
) -> Schema:
    out: Schema = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    return out


def operation(
    op_id: str,
    summary: str,
    ok: dict[int, Schema],
    errors: tuple[int, ...],
    *,
    params: list[Schema] | None = None,
    body: Schema | None = None,
    public: bool = False,
    description: str | None = None,
) -> Schema:
    responses: dict[str, Schema] = {str(code): a for code, a in ok.items()}
    for code in (*errors, *(() if public else (401, 429))):
        responses[str(code)] = answer(_ERRORS[code], ref("Problem"), PROBLEM_JSON)
    # aiohttp's HTTP parser refuses a request line or header over 8 KiB before any handler runs.
    responses.setdefault("400", answer(_ERRORS[400], ref("Problem"), PROBLEM_JSON))
    responses["400"]["content"]["text/plain"] = {"schema": string()}
    op: Schema = {"operationId": op_id, "summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    if public:
        op["security"] = []
    return op


ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": integer(format="int32", minimum=1, maximum=INT32_MAX),
}
MESSAGE_ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": integer(format="int64", minimum=1, maximum=ID64_MAX),
}
CURSOR_PARAM = {
    "name": "cursor",
    "in": "query",
    "required": False,
    "schema": string(200),
    "description": "The `nextCursor` of the previous page.",
}


def limit_param(limits: ApiLimits) -> Schema:
    return {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": integer(minimum=1, maximum=limits.page_max, default=limits.page_default),
    }


def status_param(values: tuple[str, ...]) -> Schema:
    return {"name": "status", "in": "query", "required": False, "schema": string(enum=list(values))}
