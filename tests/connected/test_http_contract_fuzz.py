"""Fuzz every route of intake and stats from the OpenAPI document they serve (schemathesis).

In process (ASGI, the app's real lifespan) with the real stack behind it: its own RabbitMQ
virtual host and database. Positive and negative cases per operation; a grid token is sent so
reports get past authentication. Every response must be a non-5xx with a documented status,
content type, headers and a body that validates against its schema. The counts are printed.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from pymongo import MongoClient
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.intake.app import create_app as create_intake
from services.stats.app import create_app as create_stats
from services.stats.config import StatsSettings
from shared.settings import GwSettings
from tests.connected.intake_harness import grid_token, intake_settings
from tools.vhosts import create_vhost, delete_vhost

pytestmark = pytest.mark.connected

EXAMPLES_PER_MODE = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def stack_settings() -> Iterator[GwSettings]:
    base = GwSettings()
    vhost, db = f"gw-fuzz-{uuid.uuid4().hex[:10]}", f"gwfuzz_{uuid.uuid4().hex[:10]}"
    try:
        url = create_vhost(base, vhost)
    except httpx.HTTPError as error:
        pytest.fail(f"RabbitMQ management API not reachable ({error}); run `make stack-up`", pytrace=False)
    yield base.model_copy(update={"amqp_url": url, "mongo_db": db})
    shutdown_lifespans()  # stop the apps schemathesis started before their vhost goes
    delete_vhost(base, vhost)
    client: MongoClient[dict[str, Any]]
    with MongoClient(base.mongo_url, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(db)


def _fuzz(app: Any, headers: dict[str, str]) -> tuple[Counter[str], list[str]]:
    """Run every operation in both modes; count cases and statuses, collect failures."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    counts: Counter[str] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # the document itself is broken somewhere
            failures.append(f"invalid operation in the document: {result.err()}")
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = _runner(operation, mode, headers, counts, failures)
            try:
                run()
            except Unsatisfiable:  # nothing to negate (a route without parameters or body)
                assert mode is GenerationMode.NEGATIVE, operation.label
                counts["operations without negative cases"] += 1
        counts["operations"] += 1
    return counts, failures


def _runner(
    operation: Any, mode: GenerationMode, headers: dict[str, str], counts: Counter[str], failures: list[str]
) -> Callable[[], None]:
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        counts["cases"] += 1
        counts[f"status {response.status_code // 100}xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except Exception as failure:  # collect every failure, then fail once with all of them
            counts["failures"] += 1
            failures.append(f"{operation.label} ({mode.value}): {str(failure).splitlines()[0]}")

    return run


def _report(service: str, counts: Counter[str], failures: list[str]) -> None:
    print(f"\n[{service}] " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    assert counts["status 5xx"] == 0, failures
    assert failures == [], "\n".join(sorted(set(failures))[:30])


@pytest.mark.usefixtures("mongo_ready")
def test_intake_routes_answer_within_their_openapi_document(stack_settings: GwSettings) -> None:
    app = create_intake(intake_settings(stack_settings))
    counts, failures = _fuzz(app, grid_token())
    _report("intake", counts, failures)


@pytest.mark.usefixtures("mongo_ready")
def test_stats_routes_answer_within_their_openapi_document(stack_settings: GwSettings) -> None:
    app = create_stats(StatsSettings(**stack_settings.model_dump()))
    counts, failures = _fuzz(app, {})
    _report("stats", counts, failures)
