"""Warden over HTTP: the decision API agents call and the admin API operators use.

    from warden.server import Service, ServerSettings, create_app

    service = Service(project, store, ServerSettings())   # recovers, then serves
    app = create_app(service)                             # any ASGI server runs it

`warden serve` does this with uvicorn (httptools, uvloop), one process per replica. The
package needs the ``server`` extra (FastAPI, uvicorn); the decision core never imports it.
"""

from __future__ import annotations

from warden.server.app import create_app, openapi_document
from warden.server.service import Service
from warden.server.settings import ServerSettings

__all__ = ["ServerSettings", "Service", "create_app", "openapi_document"]
