"""Roundtable's HTTP API: start runs, follow them, talk to them, and be told when they end.

Served on the UI's server under ``/api`` (``mount``), documented by an OpenAPI schema at
``/api/openapi.json``, every route behind a bearer token (``ROUNDTABLE_API_TOKEN``). Beside
it, ``/v1`` (``create_openai_api``): the same runs, behind the same token, for any OpenAI
client, each team a model. Depends on ``conversations`` and ``memory``; imports no Chainlit.
"""

from roundtable.api.app import create_api, mount
from roundtable.api.config import ApiSettings, load_api_settings
from roundtable.api.openai_compat import create_openai_api
from roundtable.api.registry import RunRegistry

__all__ = [
    "ApiSettings",
    "RunRegistry",
    "create_api",
    "create_openai_api",
    "load_api_settings",
    "mount",
]
