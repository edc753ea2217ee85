"""The integrator's examples (docs/integrators.md) run as a department would run them: a separate
process in another language, logged in as a provisioned department user (read its own queue, write
``gw.commands``, configure nothing), taking one real ``MatterDispatched`` from ``dept.<id>`` and
sending ``accept_matter`` for its round. Node and npm are required: missing, the test fails."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest

from shared.broker import make_broker, publish_confirmed
from shared.contracts import COMMAND_ADAPTER, AcceptMatter
from shared.domain import Priority, Tier
from shared.settings import GwSettings
from shared.topology import (
    COMMANDS,
    DISPATCH,
    dispatch_routing_key,
)
from tests.connected.broker_users import provisioned_department
from tests.stories import Matter

pytestmark = pytest.mark.connected

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "department"
DEPARTMENT = "changjia.emergency_safety"
RUN_TIMEOUT = 300.0  # the first Node run installs amqplib from npm (once per machine)


def command_line(language: str) -> list[str]:
    if language == "python":
        return [sys.executable, str(EXAMPLES / "python" / "department.py")]
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required for the Node example (apt-get install nodejs npm)", pytrace=False)
    return ["bash", str(EXAMPLES / "node" / "run.sh")]


@pytest.fixture
async def department_url(settings: GwSettings) -> AsyncIterator[str]:
    async with provisioned_department(settings, DEPARTMENT) as url:
        yield url


@pytest.mark.parametrize("language", ["python", "node"])
async def test_an_example_department_accepts_its_work_item(
    settings: GwSettings, department_url: str, language: str
) -> None:
    dispatched = next(
        e for e in Matter("safety_hazard", "urgent").report().events if e.event_type == "matter_dispatched"
    )
    assert dispatched.lead == DEPARTMENT
    connection = await aio_pika.connect(settings.amqp_url)  # admin: a test queue on every command
    async with connection:
        channel = await connection.channel()
        commands = await channel.declare_queue(exclusive=True)
        await commands.bind(COMMANDS.name, routing_key="#")
        admin = make_broker(settings, service="test-dispatch-side")
        await admin.connect()
        try:
            await publish_confirmed(  # what dispatch routes to the department's queue
                admin,
                dispatched.model_dump(mode="json"),
                exchange=DISPATCH,
                routing_key=dispatch_routing_key("changjia", Tier.DEPARTMENT, DEPARTMENT, Priority.P1),
            )
        finally:
            await admin.stop()

        process = await asyncio.create_subprocess_exec(
            *command_line(language),
            env={**os.environ, "GW_AMQP_URL": department_url, "GW_DEPARTMENT_ID": DEPARTMENT},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail(f"the {language} example did not finish within {RUN_TIMEOUT:.0f} s")
        output = out.decode() + err.decode()
        assert process.returncode == 0, output
        assert f"matter {dispatched.matter_id} round {dispatched.round} role lead" in output, output

        message = await commands.get(timeout=10, fail=False)
        assert message is not None, f"no command on gw.commands; the example said:\n{output}"
        await message.ack()
        command = COMMAND_ADAPTER.validate_python(json.loads(message.body))
        assert isinstance(command, AcceptMatter)
        assert (command.matter_id, command.round, command.actor_id) == (
            dispatched.matter_id,
            dispatched.round,
            DEPARTMENT,
        )
        assert message.routing_key == "changjia.accept_matter"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/json"
