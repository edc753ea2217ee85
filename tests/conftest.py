"""Fixtures shared by every test tier.

Connected tests get an isolated RabbitMQ virtual host and a fresh database each, so the
real topology names (a contract) are used unchanged and tests never see each other's
messages. A missing broker or store is an error, never a skip.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import pytest
from pymongo import MongoClient

from shared.settings import GwSettings


def _management_client(settings: GwSettings) -> httpx.Client:
    parts = urlsplit(settings.amqp_management_url)
    auth = (parts.username or "guest", parts.password or "guest")
    base = urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""), "", "", ""))
    return httpx.Client(base_url=base, auth=auth, timeout=10.0)


def _vhost_url(amqp_url: str, vhost: str) -> str:
    parts = urlsplit(amqp_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


@pytest.fixture(scope="session")
def base_settings() -> GwSettings:
    return GwSettings()


@pytest.fixture
def vhost(base_settings: GwSettings) -> Iterator[str]:
    """A fresh RabbitMQ virtual host for one test, deleted afterwards."""
    name = f"gw-test-{uuid.uuid4().hex[:12]}"
    with _management_client(base_settings) as client:
        try:
            client.put(f"/api/vhosts/{name}").raise_for_status()
        except httpx.HTTPError as error:
            pytest.fail(
                f"RabbitMQ management API not reachable at {base_settings.amqp_management_url} "
                f"({error}); run `make stack-up`",
                pytrace=False,
            )
        user = urlsplit(base_settings.amqp_url).username or "guest"
        client.put(
            f"/api/permissions/{name}/{user}", json={"configure": ".*", "write": ".*", "read": ".*"}
        ).raise_for_status()
        yield name
        client.delete(f"/api/vhosts/{name}")


@pytest.fixture
def mongo_db_name(base_settings: GwSettings) -> Iterator[str]:
    """A fresh database name for one test, dropped afterwards."""
    name = f"gwtest_{uuid.uuid4().hex[:12]}"
    yield name
    with MongoClient(base_settings.mongo_url, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(name)


@pytest.fixture
def settings(base_settings: GwSettings, vhost: str, mongo_db_name: str) -> GwSettings:
    """Settings pointing at this test's own vhost and database."""
    return base_settings.model_copy(
        update={"amqp_url": _vhost_url(base_settings.amqp_url, vhost), "mongo_db": mongo_db_name}
    )


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
