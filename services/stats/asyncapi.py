"""The stats service's AsyncAPI application object: ``faststream docs gen services.stats.asyncapi:app``.

``app`` is built on first access (module ``__getattr__``), never at import: it is the broker of
``create_app(StatsSettings())`` (no connection is made) with its typed subscribers and declared
publishers. The running service serves the same document at ``/asyncapi.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.stats.app import SERVICE, create_app
from services.stats.config import StatsSettings
from shared.asyncapi import application

if TYPE_CHECKING:
    from faststream import FastStream


def build() -> FastStream:
    runtime = create_app(StatsSettings()).state.runtime
    return application(runtime.broker, service=SERVICE)


def __getattr__(name: str) -> FastStream:
    if name == "app":
        return build()
    raise AttributeError(name)
