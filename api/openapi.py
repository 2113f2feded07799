"""The API's OpenAPI schema: FastAPI's, with what FastAPI cannot know added.

The bearer token on every operation; the 400 and 413 answers the middleware gives; and this
server's own names (its endpoints, teams and roles, from its configuration and team files, not
the code) as enums where a request names one.

Owns the schema document only; the routes and models it describes are ``routes``'s and
``schemas``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

__all__ = ["Names", "openapi_schema"]


@dataclass(frozen=True)
class Names:
    """The names this server offers, listed in its schema: they come from its configuration
    (endpoints) and its team files (teams, roles), not from the code."""

    endpoints: list[str]
    teams: list[str]
    roles: list[str]


def openapi_schema(app: FastAPI, names: Names) -> dict[str, Any]:
    """FastAPI's schema, with the bearer token declared for every operation and the names of
    this server's endpoints, teams and roles listed."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            servers=app.servers or None,
        )
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
        }
        schema["security"] = [{"bearer": []}]
        _name_enums(components["schemas"], names)
        _middleware_answers(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _name_enums(models: dict[str, Any], names: Names) -> None:
    """Where a request names an endpoint, a team or a role: this server's names only."""
    settings = models["RunSettings"]["properties"]
    mapping = settings["endpoints"]
    mapping.pop("patternProperties", None)
    mapping["propertyNames"] = {"enum": names.roles}
    mapping["additionalProperties"] = {"type": "string", "enum": names.endpoints}
    _enum(settings["roles"], names.roles)
    _enum(models["RunRequest"]["properties"]["team"], names.teams)
    _enum(models["MessageRequest"]["properties"]["ask"], names.roles)


def _middleware_answers(schema: dict[str, Any]) -> None:
    """The answers of the body cap (413, every operation) and of a body that is not JSON
    (400, every operation with a body): no route declares them."""
    problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            responses["413"] = {"description": "The body is too large", "content": problem}
            if "requestBody" in operation:
                responses["400"] = {"description": "The body is not JSON", "content": problem}


def _enum(prop: dict[str, Any], values: list[str]) -> None:
    """Narrow a name (or a list of names, or an optional one) to ``values``."""
    for option in prop.get("anyOf", [prop]):
        target = option.get("items", option)
        if target.get("type") == "string":
            target["enum"] = values
