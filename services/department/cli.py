"""``gridwhistle dept``: a department's inbox (``inbox``) and a worker bot (``work``)."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from services.department.client import DepartmentClient, WorkItem
    from shared.contracts import Event

dept_app = typer.Typer(help="Department side: inbox and worker bot.", no_args_is_help=True)


async def _start(client: DepartmentClient) -> None:
    """Start consuming; a queue the services have not declared yet is a clear message, not a trace."""
    from aiormq.exceptions import ChannelNotFoundEntity

    try:
        await client.broker.start()
    except ChannelNotFoundEntity:
        Console(stderr=True).print(
            f"[red]queue {client.queue.name} does not exist yet[/]: start dispatch (it declares every queue) "
            "or run `gridwhistle topology declare`"
        )
        raise typer.Exit(1) from None


async def _reload(client: DepartmentClient, stats_url: str, http_timeout: float, *, quiet: bool = False) -> None:
    """The department's open matters from the stats read model (they survive any restart); when
    stats is away, say so and go on with what arrives on the queue."""
    import httpx

    from services.department.reload import ReloadError, reload_open_matters

    async with httpx.AsyncClient(base_url=stats_url, timeout=http_timeout) as http:
        try:
            count = await reload_open_matters(client, http)
        except ReloadError as error:
            Console(stderr=True).print(f"[yellow]open matters not reloaded ({error}): showing new work only[/]")
            return
    if not quiet:
        Console(stderr=True).print(f"{count} open matters reloaded from {stats_url}")


async def _run_client(
    client: DepartmentClient,
    seconds: float | None,
    *,
    live: bool,
    actions: bool = False,
    reload: Callable[[], Awaitable[None]] | None = None,
) -> None:
    from rich.live import Live

    from services.department.inbox import inbox_table

    await client.broker.connect()
    await _start(client)
    try:
        if reload is not None:
            await reload()  # after subscribing: nothing dispatched meanwhile is missed
        if actions:
            await _inbox_session(client, reload)
        elif not live:
            await (asyncio.sleep(seconds) if seconds else asyncio.Event().wait())
        else:
            with Live(inbox_table(client, numbered=False), refresh_per_second=2) as view:
                loop = asyncio.get_running_loop()
                end = loop.time() + seconds if seconds else None
                while end is None or loop.time() < end:
                    view.update(inbox_table(client, numbered=False))
                    await asyncio.sleep(0.5)
    finally:
        await client.broker.stop()


async def _inbox_session(client: DepartmentClient, reload: Callable[[], Awaitable[None]] | None = None) -> None:
    """Table, prompt, action, table again — until ``q`` or end of input. Work items keep arriving
    in the background; Enter shows them (read back from the read model first)."""
    from services.department.inbox import ActionError, carry_out, inbox_table, parse_action

    out = Console()
    while True:
        out.print(inbox_table(client, numbered=True))
        try:
            line = await asyncio.to_thread(input, "action> ")
        except EOFError:
            return
        if line.strip().lower() in ("q", "quit", "exit"):
            return
        try:
            action = parse_action(line)
            if action is None and reload is not None:
                await reload()
            if action is not None:
                item, command = await carry_out(action, client)
                out.print(f"[green]{command.command_type}[/] sent for {str(item.matter_id)[:8]} (round {item.round})")
        except ActionError as error:
            out.print(f"[red]{error}[/]")


def _client(department_id: str, *, on_item: object = None) -> DepartmentClient:
    from services.department.client import DepartmentClient
    from shared.broker import make_broker
    from shared.settings import GwSettings

    broker = make_broker(GwSettings(), service="dept")
    client = DepartmentClient(broker, department_id, on_item=on_item)  # type: ignore[arg-type]
    client.subscribe()
    return client


@dept_app.command("inbox")
def inbox(
    department_id: Annotated[str, typer.Argument(help="e.g. changjia.civil_affairs")],
    seconds: Annotated[float | None, typer.Option("--seconds", help="Watch only: stop after this long")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="A live table without actions")] = False,
    stats_url: Annotated[
        str | None, typer.Option("--stats-url", help="Reload open matters from here (default GW_DEPT_STATS_URL)")
    ] = None,
) -> None:
    """The department's open matters with their deadlines: reloaded from the stats read model on
    start (and on each refresh), then kept up to date from dept.<id>; and actions on them.

    In a terminal: a numbered table and a prompt — `a 2` accept, `r 2 <reason>` return,
    `d 2 [note]` resolve, `w 2 <reason>` whistle up, Enter refresh, `q` quit. With --watch,
    --seconds or when input is not a terminal: a live table only.
    """
    import sys

    from services.department.config import DepartmentSettings

    settings = DepartmentSettings()
    url = stats_url or settings.dept_stats_url
    actions = not watch and seconds is None and sys.stdin.isatty()
    client = _client(department_id)
    first = True

    async def reload() -> None:
        nonlocal first
        await _reload(client, url, settings.dept_stats_timeout, quiet=not first)
        first = False

    asyncio.run(_run_client(client, seconds, live=True, actions=actions, reload=reload))


@dept_app.command("work")
def work(
    department_id: Annotated[str, typer.Argument(help="e.g. changjia.civil_affairs")],
    accept_after: Annotated[float, typer.Option("--accept-after", help="Seconds before accepting")] = 1.0,
    resolve_after: Annotated[float, typer.Option("--resolve-after", help="Seconds before resolving")] = 2.0,
    return_rate: Annotated[float, typer.Option("--return-rate", min=0.0, max=1.0)] = 0.0,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    max_items: Annotated[int | None, typer.Option("--max", help="Stop after handling N matters")] = None,
) -> None:
    """A bot: accept, then resolve (or return a share of the matters with a reason)."""
    from shared.contracts import MatterDispatched

    rng = random.Random(seed)
    done = asyncio.Event()
    handled = 0
    tasks: set[asyncio.Task[None]] = set()

    async def handle(item: WorkItem, client: DepartmentClient) -> None:
        nonlocal handled
        await asyncio.sleep(accept_after)
        if rng.random() < return_rate and item.role == "lead":
            await client.return_(item.matter_id, "not within our remit")
        else:
            if item.state == "dispatched":
                await client.accept(item.matter_id)
            await asyncio.sleep(resolve_after)
            await client.resolve(item.matter_id, "handled by the bot")
        handled += 1
        if max_items is not None and handled >= max_items:
            done.set()

    holder: list[DepartmentClient] = []

    async def on_item(item: WorkItem, event: Event) -> None:
        if isinstance(event, MatterDispatched):
            task = asyncio.create_task(handle(item, holder[0]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    client = _client(department_id, on_item=on_item)
    holder.append(client)

    async def run() -> None:
        await client.broker.connect()
        await _start(client)
        try:
            await done.wait()
        finally:
            await client.broker.stop()
        Console().print(f"handled {handled} matters")

    asyncio.run(run())
