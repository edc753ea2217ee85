"""The one MongoDB client factory (PyMongo's native async API; Motor is deprecated upstream)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo import AsyncMongoClient

if TYPE_CHECKING:
    from shared.settings import GwSettings

MongoDoc = dict[str, Any]


def make_mongo_client(settings: GwSettings, *, url: str | None = None) -> AsyncMongoClient[MongoDoc]:
    """A client that connects lazily on first use; close it in the lifespan."""
    return AsyncMongoClient(
        url or settings.mongo_url,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=5000,
        appname="gridwhistle",
    )
