"""The dispatch service's AsyncAPI application object: ``faststream docs gen services.dispatch.asyncapi:app``.

``app`` is built on first access (module ``__getattr__``), never at import: it is the broker of
``create_app(DispatchSettings())`` (no connection is made) with its typed subscribers and declared
publishers. The running service serves the same document at ``/asyncapi.json``.
"""

from __future__ import annotations

from services.dispatch.app import SERVICE, create_app
from services.dispatch.config import DispatchSettings
from shared.asyncapi import lazy_application, service_application

__getattr__ = lazy_application(lambda: service_application(create_app, DispatchSettings(), service=SERVICE))
