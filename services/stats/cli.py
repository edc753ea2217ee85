"""``gridwhistle stats``: ``serve`` the service, ``rebuild`` its read models from the event log."""

from __future__ import annotations

import asyncio
from typing import Annotated

import aio_pika
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.stats.config import StatsSettings
from services.stats.rebuild import RebuildReport, rebuild
from shared.logging import configure_logging
from shared.mongo import make_mongo_client
from shared.registry import load_registry
from shared.topology import STATS_EVENTS

stats_app = typer.Typer(help="The stats service: read models, figures, backlog.", no_args_is_help=True)


@stats_app.command("serve")
def serve_command(
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default GW_STATS_PORT, 8030)")] = None,
) -> None:
    """Run the stats service until SIGINT/SIGTERM."""
    from services.stats.app import SERVICE, create_app
    from shared.service import run_service

    settings = StatsSettings()
    run_service(SERVICE, create_app, settings, port=settings.stats_port if port is None else port)


async def _rebuild(settings: StatsSettings, progress: Progress) -> RebuildReport:
    registry = load_registry(settings.registry_path)
    client = make_mongo_client(settings)
    task = progress.add_task("replaying the event log", total=None)

    def advance(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    try:
        return await rebuild(client[settings.mongo_db], registry, settings.zone, progress=advance)
    finally:
        await client.close()


async def _live_consumers(settings: StatsSettings) -> int:
    """Consumers on ``stats.events`` right now (a passive declare: the management API lags by seconds)."""
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(STATS_EVENTS.name, passive=True)
        return int(queue.declaration_result.consumer_count or 0)


@stats_app.command("rebuild")
def rebuild_command() -> None:
    """Replay event_log into fresh collections and swap them in. Stop the stats service first:
    events published meanwhile wait in the durable stats.events queue and are applied once it
    starts again (refused while a consumer is on that queue)."""
    settings = StatsSettings()
    configure_logging("stats", level="WARNING", fmt="console")
    console = Console(stderr=True)
    try:
        consumers = asyncio.run(_live_consumers(settings))
    except Exception as error:  # no broker, or no queue yet: nothing is consuming
        console.print(f"(could not read the {STATS_EVENTS.name} consumers: {type(error).__name__})")
        consumers = 0
    if consumers:
        console.print(f"[red]{consumers} consumer(s) on {STATS_EVENTS.name}[/]: stop the stats service first")
        raise typer.Exit(2)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        report = asyncio.run(_rebuild(settings, progress))
    console.print(f"rebuilt from {report.events} events: {report.matters} matters, {report.buckets} day buckets")
