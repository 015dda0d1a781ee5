"""OpenAPI paths of ``broadcaster/api/contacts.py`` (merged into ``openapi.document``)."""

from __future__ import annotations

from typing import Any

from broadcaster.api.bodies import ID64_MAX
from broadcaster.api.limits import ApiLimits
from broadcaster.api.openapi import (
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


def paths(limits: ApiLimits) -> dict[str, Schema]:
    return {**contact_paths(limits)}
