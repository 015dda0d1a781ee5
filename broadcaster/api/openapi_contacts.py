"""OpenAPI paths of ``broadcaster/api/contacts.py`` (merged into ``openapi.document``)."""

from __future__ import annotations

from typing import Any

from broadcaster.api.bodies import ID64_MAX, INT32_MAX
from broadcaster.api.limits import ApiLimits
from broadcaster.api.openapi_parts import (
    CURSOR_PARAM,
    answer,
    integer,
    json_body,
    lenient,
    limit_param,
    obj,
    operation,
    string,
)
from broadcaster.domain.contacts import MAX_ATTRIBUTES, VALUE_CHARS, IdentifierType

Schema = dict[str, Any]

TYPES = [t.value for t in IdentifierType]
IDENTIFIER = obj(
    {"type": string(enum=TYPES), "value": string(VALUE_CHARS)},
    ("type", "value"),
)
ATTRIBUTES = {
    "type": "object",
    "maxProperties": MAX_ATTRIBUTES,
    "additionalProperties": {
        "oneOf": [string(1000), {"type": "number"}, {"type": "boolean"}],
        "nullable": True,
    },
    "description": "Named values placeholders such as {first_name} read.",
}
CONTACT = obj(
    {
        "contactID": integer(),
        "identifiers": {"type": "array", "items": IDENTIFIER},
        "attributes": {"type": "object", "additionalProperties": string()},
        "lists": {"type": "array", "items": string()},
        "createdAt": string(nullable=True),
        "updatedAt": string(nullable=True),
    },
    ("contactID", "identifiers", "attributes", "lists"),
)
IMPORT_REPORT = obj(
    {
        "source": string(),
        "list": string(nullable=True),
        "read": integer(),
        "created": integer(),
        "updated": integer(),
        "invalidRows": integer(),
        "members": integer(description="Members of the list after the import."),
        "errors": {
            "type": "array",
            "items": obj(
                {"line": integer(), "value": string(), "reason": string()},
                ("line", "value", "reason"),
            ),
            "description": "The first 50 row errors (invalidRows counts them all).",
        },
    },
    ("source", "list", "read", "created", "updated", "invalidRows", "members", "errors"),
)
IMPORT_UPLOAD = obj(
    {
        "file": string(format="binary", description="CSV, TXT, TSV, XLSX or JSON contacts."),
        "list": string(
            100, description="The list the contacts join (created if new); none: no list."
        ),
        "by": string(8, enum=["MOBILE", "EXTERNAL"]),
        "region": string(3, description="ISO 3166 region for national numbers."),
        "sheet": string(100, description="Worksheet of an XLSX (default: the first)."),
        "columns": string(
            10_000,
            description="Names of the cells after the phone of a file without a header row, "
            "comma-separated (first_name,tier).",
        ),
    },
    ("file",),
)
#: The query parameters of an import whose body is the file (the multipart fields, and its name).
RAW_QUERY = (
    ("list", 100, "the list the contacts join (created if new)."),
    ("by", 8, "MOBILE or EXTERNAL."),
    ("region", 3, "ISO 3166 region for national numbers."),
    ("sheet", 100, "worksheet of an XLSX."),
    ("columns", 2_000, "names of a headerless file's cells after the phone (first_name,tier)."),
    ("name", 200, "the file's name in the report (default: body)."),
)
CONTACT_ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": integer(format="int64", minimum=1, maximum=ID64_MAX),
}


def _contact_body(nullable_values: bool) -> Schema:
    ident = (
        obj(
            {"type": string(enum=TYPES), "value": string(VALUE_CHARS, nullable=True)},
            ("type",),
        )
        if nullable_values
        else IDENTIFIER
    )
    return lenient(
        obj(
            {
                "identifiers": {"type": "array", "maxItems": 10, "items": ident},
                "attributes": ATTRIBUTES,
                "lists": {"type": "array", "maxItems": 100, "items": string(100, minLength=1)},
                "region": string(3, description="ISO 3166 region for national numbers."),
            },
            example={
                "identifiers": [{"type": "MOBILE", "value": "+48505606707"}],
                "attributes": {"first_name": "Ana"},
                "lists": ["vip"],
            },
        )
    )


def _query(name: str, description: str, max_len: int = VALUE_CHARS) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": string(max_len),
        "description": description,
    }


def contact_paths(limits: ApiLimits) -> dict[str, Schema]:
    page = obj(
        {"items": {"type": "array", "items": CONTACT}, "nextCursor": string(nullable=True)},
        ("items", "nextCursor"),
    )
    search = [
        _query("mobile", "Only the contact with this MOBILE (any spelling of the number)."),
        _query("email", "Only the contact with this EMAIL."),
        _query("external", "Only the contact with this EXTERNAL id."),
        _query("app_alias", "Only the contact with this APP_ALIAS."),
        _query("id", "Only the contact with this contactID."),
        _query("list", "Only members of this list.", 100),
        _query("region", "ISO region for a national ?mobile=.", 3),
    ]
    return {
        "/v1/contacts": {
            "post": operation(
                "createContact",
                "Create a contact (seed 003 identifiers, attributes, lists).",
                {201: answer("Created.", CONTACT)},
                (400, 409, 413, 415, 422),
                body=json_body(_contact_body(False)),
                description="409 when one of its identifiers already names another contact.",
            ),
            "get": operation(
                "listContacts",
                "The workspace's contacts by contactID; search by one identifier or a list.",
                {200: answer("A page.", page)},
                (400, 404, 422),
                params=[limit_param(limits), CURSOR_PARAM, *search],
            ),
        },
        "/v1/contacts/import": {
            "post": operation(
                "importContacts",
                "Upsert the contacts of an uploaded file (CSV, TXT, TSV, XLSX, JSON) into a list, "
                "all or nothing.",
                {200: answer("What the import did, with the first row errors.", IMPORT_REPORT)},
                (400, 413, 415, 422),
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {"schema": IMPORT_UPLOAD},
                        # the whole body is the file (any type of uploads.RAW_SUFFIX)
                        "text/csv": {"schema": string(format="binary")},
                        "application/octet-stream": {"schema": string(format="binary")},
                    },
                },
                params=[
                    _query(name, f"With the file as the whole body: {what}", most)
                    for name, most, what in RAW_QUERY
                ],
                description="The file is the `file` part of a multipart upload, or the whole "
                "body with its type (`text/csv`, `text/plain`, `text/tab-separated-values`, "
                "`application/json`, the XLSX type, `application/octet-stream`) and the fields "
                "in the query (`?list=vip&name=people.csv`). Rows are matched by MOBILE (or "
                "EXTERNAL with by=EXTERNAL); the "
                "phone column is the MOBILE, columns headed email, external, app_alias those "
                "identifiers, other named columns attributes. A file without a header row names "
                "its cells with `columns`. Bad rows are row errors; a file that fails as a whole "
                "(over the row or size limit, unreadable) leaves nothing. Same upload limits as "
                "broadcast uploads.",
            ),
        },
        "/v1/contacts/{id}": {
            "get": operation(
                "getContact",
                "A contact.",
                {200: answer("The contact.", CONTACT)},
                (404,),
                params=[CONTACT_ID_PARAM],
            ),
            "patch": operation(
                "updateContact",
                "Change identifiers (a null value removes the type), merge attributes (null "
                "removes), add to lists.",
                {200: answer("The contact now.", CONTACT)},
                (400, 404, 409, 413, 415, 422),
                params=[CONTACT_ID_PARAM],
                body=json_body(_contact_body(True)),
            ),
            "delete": operation(
                "eraseContact",
                "Erase a contact: identifiers, attributes, and its number in past messages.",
                {
                    200: answer(
                        "Erased.",
                        obj(
                            {
                                "contactID": integer(),
                                "erased": {"type": "boolean"},
                                "messagesMasked": integer(),
                            },
                            ("contactID", "erased"),
                        ),
                    )
                },
                (404,),
                params=[CONTACT_ID_PARAM],
                description="The suppression list keeps the number: an opt-out still holds.",
            ),
        },
    }


LIST = obj(
    {"id": integer(), "name": string(), "members": integer(), "createdAt": string(nullable=True)},
    ("id", "name", "members"),
)
TEMPLATE = obj(
    {
        "id": integer(),
        "name": string(),
        "text": string(),
        "from": string(),
        "list": string(nullable=True),
        "createdAt": string(nullable=True),
        "updatedAt": string(nullable=True),
    },
    ("id", "name", "text", "from"),
)
INT_ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": integer(format="int32", minimum=1, maximum=INT32_MAX),
}
MEMBERS = json_body(
    obj(
        {
            "contactIDs": {
                "type": "array",
                "minItems": 0,
                "maxItems": 10_000,
                "items": integer(format="int64", minimum=1, maximum=ID64_MAX),
            }
        },
        ("contactIDs",),
    )
)


def _template_body(required: tuple[str, ...]) -> Schema:
    return lenient(
        obj(
            {
                "name": string(200, minLength=1),
                "text": string(1600, minLength=1, description="{name} from attributes, {0}…"),
                "from": string(20, minLength=1, description="A sender code of the workspace."),
                "list": string(100, minLength=1, nullable=True, description="Its group."),
            },
            required,
            example={"name": "welcome", "text": "Hi {first_name}", "from": "55501", "list": "vip"},
        )
    )


def _page_of(item: Schema) -> Schema:
    return obj(
        {"items": {"type": "array", "items": item}, "nextCursor": string(nullable=True)},
        ("items", "nextCursor"),
    )


def list_paths(limits: ApiLimits) -> dict[str, Schema]:
    page = [limit_param(limits), CURSOR_PARAM]
    member_answer = answer("The list now.", LIST)
    return {
        "/v1/lists": {
            "post": operation(
                "createList",
                "Create an empty list; 409 when the name exists.",
                {201: answer("Created.", LIST)},
                (400, 409, 413, 415, 422),
                body=json_body(obj({"name": string(100, minLength=1)}, ("name",))),
            ),
            "get": operation(
                "listLists",
                "The workspace's lists with member counts.",
                {200: answer("A page.", _page_of(LIST))},
                (400,),
                params=page,
            ),
        },
        "/v1/lists/{id}": {
            "get": operation(
                "getList",
                "A list.",
                {200: answer("The list.", LIST)},
                (404,),
                params=[INT_ID_PARAM],
            ),
            "delete": operation(
                "deleteList",
                "Delete a list (its contacts stay).",
                {204: answer("Deleted.")},
                (404,),
                params=[INT_ID_PARAM],
            ),
        },
        "/v1/lists/{id}/members": {
            "post": operation(
                "addListMembers",
                "Add contacts to the list (members already in it are left alone).",
                {200: member_answer},
                (400, 404, 413, 415, 422),
                params=[INT_ID_PARAM],
                body=MEMBERS,
            ),
            "delete": operation(
                "removeListMembers",
                "Remove contacts from the list.",
                {200: member_answer},
                (400, 404, 413, 415, 422),
                params=[INT_ID_PARAM],
                body=MEMBERS,
            ),
        },
        "/v1/templates": {
            "post": operation(
                "createTemplate",
                "Create a prepared message (seed 003's messageId).",
                {201: answer("Created.", TEMPLATE)},
                (400, 413, 415, 422),
                body=json_body(_template_body(("name", "text", "from"))),
            ),
            "get": operation(
                "listTemplates",
                "The workspace's prepared messages.",
                {200: answer("A page.", _page_of(TEMPLATE))},
                (400,),
                params=page,
            ),
        },
        "/v1/templates/{id}": {
            "get": operation(
                "getTemplate",
                "A prepared message.",
                {200: answer("It.", TEMPLATE)},
                (404,),
                params=[INT_ID_PARAM],
            ),
            "patch": operation(
                "updateTemplate",
                "Change name, text, sender code or list (null: none).",
                {200: answer("It now.", TEMPLATE)},
                (400, 404, 413, 415, 422),
                params=[INT_ID_PARAM],
                body=json_body(_template_body(())),
            ),
            "delete": operation(
                "deleteTemplate",
                "Delete a prepared message.",
                {204: answer("Deleted.")},
                (404,),
                params=[INT_ID_PARAM],
            ),
        },
    }


def seed003_paths() -> dict[str, Schema]:
    """Seed 003's ``/api/rest/...`` (every refusal is 400, as the seed answers)."""
    parameter = {
        "oneOf": [
            string(1000),
            {"type": "number"},
            obj(
                {
                    "name": string(64, minLength=1),
                    "value": {"oneOf": [string(1000), {"type": "number"}]},
                },
                ("name", "value"),
            ),
        ],
        "description": "A value of {0}, {1}…, or a named value for {name}.",
    }
    query_id = {"type": "integer", "minimum": 1, "maximum": INT32_MAX}
    return {
        "/api/rest/contact/get": {
            "post": operation(
                "seed003ContactGet",
                "Seed 003 contact/get: the contact one identifier names.",
                {200: answer("The contact (its contactID).", CONTACT)},
                (413, 415),
                body=json_body(
                    obj(
                        {"type": string(enum=TYPES), "value": string(VALUE_CHARS, minLength=1)},
                        ("type", "value"),
                        example={"type": "MOBILE", "value": "48505606707"},
                    )
                ),
                description="400 when no contact has it (or the input is bad).",
            )
        },
        "/api/rest/message/sendSingle": {
            "post": operation(
                "seed003SendSingle",
                "Seed 003 sendSingle: prepared message messageId to contact recipientId.",
                {204: answer("Stored for sending; the contact joined the message's list.")},
                (413, 415),
                params=[
                    {"name": "messageId", "in": "query", "required": True, "schema": query_id},
                    {"name": "recipientId", "in": "query", "required": True, "schema": query_id},
                ],
                body=json_body(
                    obj(
                        {
                            "parameters": {
                                "type": "array",
                                "maxItems": 100,
                                "items": parameter,
                                "nullable": True,
                            }
                        },
                        example={"parameters": []},
                    ),
                    required=False,
                ),
                description="400 for an unknown message or contact, a contact without a mobile "
                "number, a suppressed number or a placeholder nothing fills.",
            )
        },
    }


def paths(limits: ApiLimits) -> dict[str, Schema]:
    return {**contact_paths(limits), **list_paths(limits), **seed003_paths()}
