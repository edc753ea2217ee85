"""POST /v1/reports and :batch against the real RabbitMQ and the local Mongo-wire store."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from shared.contracts import MatterReported
from tests.connected.intake_harness import (
    GRID_A,
    GRID_B,
    EventObserver,
    TcpProxy,
    body_of,
    grid_token,
    intake_settings,
    report,
    running_intake,
)

if TYPE_CHECKING:
    from shared.settings import GwSettings

pytestmark = [pytest.mark.connected, pytest.mark.usefixtures("mongo_ready")]


async def test_valid_report_publishes_exactly_one_matter_reported_with_every_field(settings: GwSettings) -> None:
    submitted = report()
    async with EventObserver(settings.amqp_url) as events, running_intake(intake_settings(settings)) as intake:
        answer = await intake.client.post("/v1/reports", json=submitted, headers=grid_token())
        assert answer.status_code == 202, answer.text
        matter_id = answer.json()["matter_id"]
        assert answer.json()["status_url"] == f"http://127.0.0.1:8030/v1/matters/{matter_id}"
        got = await events.take(1)
        assert len(got) == 1
        assert got[0].routing_key == f"changjia.{GRID_A}.matter_reported"
        event = MatterReported.model_validate(body_of(got[0]))
        assert got[0].message_id == str(event.message_id)
        assert got[0].delivery_mode == 2  # persistent
        assert str(event.matter_id) == matter_id
        assert event.channel == "app"
        for field in ("report_id", "town_id", "grid_id", "micro_grid_id", "category", "severity", "origin", "summary"):
            assert str(getattr(event, field)) == submitted[field], field
        assert event.location is not None and event.location.model_dump() == submitted["location"]
        assert event.reporter_id == submitted["reporter_id"] and event.reporter_role == "grid_member"
        assert event.contact is not None and event.contact.phone == submitted["contact"]["phone"]
        assert event.attachments == submitted["attachments"]
        assert event.reported_at.isoformat() == "2026-03-01T00:30:00+00:00"  # occurred_at, in UTC
        assert await events.count_now() == 0


async def test_repeated_report_id_answers_the_same_matter_and_a_changed_body_is_a_conflict(
    settings: GwSettings,
) -> None:
    submitted = report()
    async with EventObserver(settings.amqp_url) as events, running_intake(intake_settings(settings)) as intake:
        first = await intake.client.post("/v1/reports", json=submitted, headers=grid_token())
        again = await intake.client.post("/v1/reports", json=dict(reversed(submitted.items())), headers=grid_token())
        changed = await intake.client.post(
            "/v1/reports", json={**submitted, "summary": "something else"}, headers=grid_token()
        )
        assert first.status_code == again.status_code == 202
        assert again.json()["matter_id"] == first.json()["matter_id"]
        assert changed.status_code == 409
        assert changed.headers["content-type"] == "application/problem+json"
        assert changed.json()["errors"] == [{"field": "report_id", "reason": "already used for a different report"}]
        assert changed.json()["status"] == 409 and changed.json()["type"] == "urn:gridwhistle:problem:conflict"
        assert len(await events.take(1)) == 1
        assert await events.count_now() == 0


BAD_REPORTS: list[tuple[str, object, int, str]] = [
    ("unknown grid", report(grid_id="changjia-g999"), 422, "grid_id"),
    ("grid of another town", report(town_id="town02"), 422, "town_id"),
    ("micro-grid of another grid", report(micro_grid_id=f"{GRID_B}-m1"), 422, "micro_grid_id"),
    ("unknown category", report(category="noise"), 422, "category"),
    ("unknown severity", report(severity="huge"), 422, "severity"),
    ("empty summary", report(summary=""), 422, "summary"),
    ("oversize summary", report(summary="x" * 2001), 422, "summary"),
    ("summary of the wrong type", report(summary=12), 422, "summary"),
    ("latitude of the wrong type", report(location={"lat": "north"}), 422, "location.lat"),
    ("attachment not a URL", report(attachments=["file:///etc/passwd"]), 422, "attachments.0"),
    ("unknown field", report(mood="angry"), 422, "mood"),
    ("missing report_id", {k: v for k, v in report().items() if k != "report_id"}, 422, "report_id"),
    ("not an object", [1, 2], 422, "body"),
]


async def test_invalid_reports_are_refused_naming_the_field_and_publish_nothing(settings: GwSettings) -> None:
    async with EventObserver(settings.amqp_url) as events, running_intake(intake_settings(settings)) as intake:
        for case, body, status, field in BAD_REPORTS:
            answer = await intake.client.post("/v1/reports", json=body, headers=grid_token())
            assert answer.status_code == status, case
            assert field in [e["field"] for e in answer.json()["errors"]], (case, answer.json())
            assert "Li Wei" not in answer.text and "north" not in answer.text  # no input echoed
        malformed = await intake.client.post(
            "/v1/reports", content=b'{"report_id": "x",', headers={**grid_token(), "content-type": "application/json"}
        )
        assert malformed.status_code == 400
        assert malformed.json()["errors"][0]["field"] == "body"
        oversize = await intake.client.post("/v1/reports", json=report(summary="y" * 70_000), headers=grid_token())
        assert oversize.status_code == 413
        assert oversize.json()["errors"][0]["field"] == "body"

        # a valid report afterwards is the first and only message: none of the above was published
        sentinel = await intake.client.post("/v1/reports", json=report(), headers=grid_token())
        assert sentinel.status_code == 202
        got = await events.take(1)
        assert [body_of(m)["matter_id"] for m in got] == [sentinel.json()["matter_id"]]
        assert await events.count_now() == 0

        metrics = (await intake.client.get("/metrics")).text
        assert 'gridwhistle_intake_requests_total{outcome="invalid",route="/v1/reports"} 13.0' in metrics
        assert 'gridwhistle_intake_validation_failures_total{field="summary"} 3.0' in metrics
        assert 'gridwhistle_intake_validation_failures_total{field="other"} 1.0' in metrics  # "mood"
        assert "gridwhistle_intake_publish_confirm_seconds_count 1.0" in metrics


async def test_grid_token_is_refused_for_another_grid_and_bad_tokens_are_401(settings: GwSettings) -> None:
    previous = "an-older-secret-still-accepted-for-a-while"
    config = intake_settings(settings, token_secrets_previous=previous)
    async with EventObserver(settings.amqp_url) as events, running_intake(config) as intake:
        for_grid_b = report(grid_id=GRID_B, micro_grid_id=None)
        other_grid = await intake.client.post("/v1/reports", json=for_grid_b, headers=grid_token(GRID_A))
        assert other_grid.status_code == 403
        assert other_grid.json()["errors"][0]["field"] == "grid_id"
        missing = await intake.client.post("/v1/reports", json=report())
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        forged = await intake.client.post(
            "/v1/reports", json=report(), headers=grid_token(secret="not-the-secret-at-all-0123456789")
        )
        assert forged.status_code == 401
        assert await events.count_now() == 0
        rotated = await intake.client.post("/v1/reports", json=report(), headers=grid_token(secret=previous))
        assert rotated.status_code == 202
        assert len(await events.take(1)) == 1


async def _accepted_once_the_broker_is_back(intake: Any, submitted: dict[str, Any]) -> Any:
    """The same report again until 202; meanwhile every answer is 503 (bounded: 20 s of retries)."""
    answers = []
    for _ in range(80):
        answer = await intake.client.post("/v1/reports", json=submitted, headers=grid_token())
        answers.append(answer.status_code)
        if answer.status_code == 202:
            return answer
        assert answer.status_code == 503, answers
        await asyncio.sleep(0.25)  # polling pause: the broker client reconnects every 2 s
    pytest.fail(f"no 202 after the broker came back: {answers}")


async def test_broker_cut_off_answers_503_and_the_same_report_later_succeeds_once(settings: GwSettings) -> None:
    proxy = TcpProxy(*settings.amqp_host_port)
    await proxy.start()
    config = intake_settings(settings, amqp_url=proxy.url(settings.amqp_url))
    submitted = report()
    try:
        async with EventObserver(settings.amqp_url) as events, running_intake(config) as intake:
            await proxy.cut()
            refused = await intake.client.post("/v1/reports", json=submitted, headers=grid_token())
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            assert await events.count_now() == 0

            await proxy.restore()
            answer = await _accepted_once_the_broker_is_back(intake, submitted)
            again = await intake.client.post("/v1/reports", json=submitted, headers=grid_token())
            assert again.json()["matter_id"] == answer.json()["matter_id"]
            got = await events.take(1)
            assert len(got) == 1
            assert body_of(got[0])["matter_id"] == answer.json()["matter_id"]
            assert await events.count_now() == 0
    finally:
        await proxy.cut()


async def test_a_broker_that_stops_answering_mid_publish_is_503_never_500(settings: GwSettings) -> None:
    """A frozen node (SIGSTOP): the client gives the connection up after ~3 heartbeats while a
    report waits for its confirm; aiormq fails that confirm with a CancelledError, which once
    escaped intake's error handling as a 500 (make chaos, SIGSTOP row)."""
    proxy = TcpProxy(*settings.amqp_host_port)
    await proxy.start()
    # heartbeat 1 s: the connection is given up after (1 + 1) * 3 s, well inside the publish timeout
    config = intake_settings(settings, amqp_url=proxy.url(settings.amqp_url), amqp_heartbeat=1, publish_timeout=30.0)
    submitted = report()
    try:
        async with EventObserver(settings.amqp_url) as events, running_intake(config) as intake:
            proxy.freeze()
            refused = await intake.client.post("/v1/reports", json=submitted, headers=grid_token(), timeout=40)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "5"

            proxy.thaw()
            answer = await _accepted_once_the_broker_is_back(intake, submitted)
            # the frozen publish may still reach the broker after the thaw: then twice, as one message
            got = await events.take(2, within=3.0)
            assert {str(body_of(m)["matter_id"]) for m in got} == {answer.json()["matter_id"]}
            assert len({m.message_id for m in got}) == 1
    finally:
        await proxy.cut()


async def test_batch_answers_one_result_per_item_in_order(settings: GwSettings) -> None:
    repeated = report()
    items = [report(), {**report(), "summary": ""}, report(grid_id=GRID_B, micro_grid_id=None), repeated, repeated]
    async with EventObserver(settings.amqp_url) as events, running_intake(intake_settings(settings)) as intake:
        answer = await intake.client.post("/v1/reports:batch", json={"reports": items}, headers=grid_token())
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
        assert [r["status"] for r in results] == [202, 422, 403, 202, 202]
        assert results[1]["errors"] == [
            {"field": "reports.1.summary", "reason": "String should have at least 1 character"}
        ]
        assert results[3]["matter_id"] == results[4]["matter_id"]
        got = await events.take(2)
        assert {str(body_of(m)["matter_id"]) for m in got} == {results[0]["matter_id"], results[3]["matter_id"]}
        assert await events.count_now() == 0

        too_many = await intake.client.post(
            "/v1/reports:batch", json={"reports": [report() for _ in range(501)]}, headers=grid_token()
        )
        assert too_many.status_code == 422
        assert too_many.json()["errors"][0]["field"] == "reports"


async def test_hostile_bodies_are_4xx_naming_the_field_never_5xx(settings: GwSettings) -> None:
    """Deeply nested JSON (it fits in the body limit) and NUL characters (no store keeps them)."""
    headers = {**grid_token(), "content-type": "application/json"}
    async with EventObserver(settings.amqp_url) as events, running_intake(intake_settings(settings)) as intake:
        for nested in (b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
            answer = await intake.client.post("/v1/reports", content=nested, headers=headers)
            assert answer.status_code == 400, answer.text[:300]
            assert "nested too deeply" in answer.text
        for field in ("summary", "report_id"):
            answer = await intake.client.post("/v1/reports", json=report(**{field: "a\u0000b"}), headers=grid_token())
            assert answer.status_code == 422, answer.text[:300]
            assert field in answer.text and "NUL" in answer.text
        sentinel = await intake.client.post("/v1/reports", json=report(), headers=grid_token())
        assert sentinel.status_code == 202
        got = await events.take(1)
        assert [body_of(m)["matter_id"] for m in got] == [sentinel.json()["matter_id"]]
        assert await events.count_now() == 0
