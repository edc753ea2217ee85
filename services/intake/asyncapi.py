"""The intake service's AsyncAPI application object: ``faststream docs gen services.intake.asyncapi:app``.

``app`` is built on first access (module ``__getattr__``), never at import: it is the broker of
``create_app(IntakeSettings())`` (no connection is made) with its typed subscribers and declared
publishers. The running service serves the same document at ``/asyncapi.json``.
"""

from __future__ import annotations

from services.intake.app import SERVICE, create_app
from services.intake.config import IntakeSettings
from shared.asyncapi import lazy_application, service_application

__getattr__ = lazy_application(lambda: service_application(create_app, IntakeSettings(), service=SERVICE))
