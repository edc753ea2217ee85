"""Fixtures shared by every test tier.

Connected tests get an isolated RabbitMQ virtual host and a fresh database each, so the
real topology names (a contract) are used unchanged and tests never see each other's
messages. A missing broker or store is an error, never a skip.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from shared.settings import GwSettings
from tools.vhosts import create_vhost, delete_vhost


@pytest.fixture(scope="session")
def base_settings() -> GwSettings:
    return GwSettings()


@pytest.fixture
def vhost_url(base_settings: GwSettings) -> Iterator[str]:
    """A fresh RabbitMQ virtual host for one test (its AMQP URL), deleted afterwards."""
    name = f"gw-test-{uuid.uuid4().hex[:12]}"
    try:
        url = create_vhost(base_settings, name)
    except httpx.HTTPError as error:
        pytest.fail(
            f"RabbitMQ management API not reachable at {base_settings.amqp_management_url} "
            f"({error}); run `make stack-up`",
            pytrace=False,
        )
    yield url
    delete_vhost(base_settings, name)


@pytest.fixture
def mongo_db_name(base_settings: GwSettings) -> Iterator[str]:
    """A fresh database name for one test, dropped afterwards."""
    name = f"gwtest_{uuid.uuid4().hex[:12]}"
    yield name
    client: MongoClient[dict[str, Any]]
    with MongoClient(base_settings.mongo_url, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(name)


@pytest.fixture
def settings(base_settings: GwSettings, vhost_url: str, mongo_db_name: str) -> GwSettings:
    """Settings pointing at this test's own vhost and database."""
    return base_settings.model_copy(update={"amqp_url": vhost_url, "mongo_db": mongo_db_name})


@pytest.fixture
async def mongo_ready(base_settings: GwSettings) -> AsyncIterator[None]:
    """Fails (never skips) when the Mongo-wire store does not answer."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        base_settings.mongo_url, serverSelectionTimeoutMS=5000
    )
    try:
        await client.admin.command("ping")
    except Exception as error:
        pytest.fail(f"Mongo-wire store not reachable at {base_settings.mongo_url} ({error}); run `make stack-up`")
    finally:
        await client.close()
    yield
