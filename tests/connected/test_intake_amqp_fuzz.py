"""Property-based fuzz of the AMQP intake (machine sources on ``gw.intake``), on the real broker
and store: whatever arrives, intake never fails on it as a server would — every message ends as
exactly one ``MatterReported`` or one dead letter with a permanent reason, nothing stays in
``intake.reports``, and every well-formed report is accepted once."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aio_pika
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from shared import topology
from shared.settings import GwSettings
from tests.connected.intake_harness import EventObserver, body_of, intake_settings, running_intake
from tests.connected.test_intake_amqp import machine_report, send

pytestmark = [pytest.mark.connected, pytest.mark.usefixtures("mongo_ready")]

FIELDS = [k for k in machine_report() if k != "report_id"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
MUTATION = st.one_of(
    st.tuples(st.just("valid"), st.none()),
    st.tuples(st.just("replace"), st.tuples(st.sampled_from(FIELDS), JSON)),
    st.tuples(st.just("drop"), st.sampled_from(FIELDS)),
    st.tuples(st.just("extra"), st.tuples(st.text(min_size=1, max_size=12), JSON)),
    st.tuples(st.just("bytes"), st.binary(max_size=200)),
    st.tuples(st.just("not an object"), JSON),
)


def body_for(kind: str, arg: Any) -> tuple[bytes, str | None]:
    """The message body, and its report_id when it is well-formed by construction."""
    report = machine_report(report_id=f"fuzz-{uuid.uuid4().hex[:12]}")
    if kind == "valid":
        return json.dumps(report).encode(), report["report_id"]
    if kind == "replace":
        field, value = arg
        report[field] = value
    elif kind == "drop":
        report.pop(arg)
    elif kind == "extra":
        key, value = arg
        report.setdefault(key, value)
    elif kind == "bytes":
        return arg, None
    else:
        return json.dumps([arg]).encode(), None
    return json.dumps(report).encode(), None


async def _depths(amqp_url: str) -> tuple[int, int]:
    """Messages ready in ``intake.reports`` and in its dead-letter queue."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        work = await channel.declare_queue(topology.INTAKE_REPORTS.name, passive=True)
        dead = await channel.declare_queue(topology.INTAKE_REPORTS.dead_letter_queue, passive=True)
        return work.declaration_result.message_count or 0, dead.declaration_result.message_count or 0


async def _drain_dead(amqp_url: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(amqp_url)
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.INTAKE_REPORTS.dead_letter_queue, ensure=True)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            got.append(message)
    return got


async def _fuzz_once(gw: GwSettings, batch: list[tuple[str, Any]]) -> None:
    bodies = [body_for(kind, arg) for kind, arg in batch]
    valid = {report_id for _, report_id in bodies if report_id is not None}
    async with EventObserver(gw.amqp_url) as events, running_intake(intake_settings(gw)):
        await _drain_dead(gw.amqp_url)  # an earlier example's leftovers are not this one's
        for body, _ in bodies:
            await send(gw, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:  # every message ends somewhere: an event or a dead letter (bounded wait)
            waiting, dead = await _depths(gw.amqp_url)
            if waiting == 0 and await events.count_now() + dead >= len(bodies):
                break
            assert loop.time() < deadline, f"{waiting} still waiting, {dead} dead of {len(bodies)}"
            await asyncio.sleep(0.2)
        accepted = [body_of(m)["report_id"] for m in await events.take(await events.count_now())]
        dead_letters = await _drain_dead(gw.amqp_url)
    assert len(accepted) + len(dead_letters) == len(bodies), "a message was lost or handled twice"
    assert len(set(accepted)) == len(accepted), "a report was accepted twice"
    assert valid <= set(accepted), f"well-formed reports not accepted: {valid - set(accepted)}"
    for message in dead_letters:  # refused as bad input, never as a crash that ran out of retries
        assert message.headers[topology.HEADER_ERROR_TYPE] == "permanent", message.headers
        assert str(message.headers[topology.HEADER_ERROR]).strip()


@hypothesis_settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(MUTATION, min_size=20, max_size=30))
def test_any_machine_message_ends_as_one_report_or_one_reasoned_dead_letter(
    settings: GwSettings, batch: list[tuple[str, Any]]
) -> None:
    asyncio.run(_fuzz_once(settings, batch))
