"""``gridwhistle dispatch`` (serve, rules check, explain) and ``gridwhistle dept`` (inbox, work bot)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from shared.domain import Category, Severity

if TYPE_CHECKING:
    from services.dispatch.rules import RuleBook
    from shared.contracts import Event
    from shared.department_client import DepartmentClient, WorkItem
    from shared.registry import Registry

dispatch_app = typer.Typer(help="The dispatch service and its routing rules.", no_args_is_help=True)
rules_app = typer.Typer(help="Routing rules (deploy/config/routing.yaml).", no_args_is_help=True)
dispatch_app.add_typer(rules_app, name="rules")
dept_app = typer.Typer(help="Department side: inbox and worker bot.", no_args_is_help=True)

_err = Console(stderr=True, highlight=False)


def _load(rules_file: Path | None) -> tuple[Registry, RuleBook]:
    from services.dispatch.config import DispatchSettings
    from services.dispatch.rules import RulesError, load_rules
    from shared.registry import RegistryError, load_registry

    settings = DispatchSettings()
    try:
        registry = load_registry(settings.registry_path)
        return registry, load_rules(rules_file or settings.rules_path, registry)
    except (RulesError, RegistryError) as error:
        _err.print("[bold red]rules invalid[/]")
        _err.print(str(error), markup=False)
        raise typer.Exit(1) from None


@rules_app.command("check")
def rules_check(file: Annotated[Path, typer.Argument(help="Rules YAML to validate")]) -> None:
    """Validate a rules file against the registry (GW_REGISTRY_PATH)."""
    _, book = _load(file)
    Console().print(f"[green]ok[/] {file}: {len(book.rules)} rules")


@dispatch_app.command("explain")
def explain(
    grid: Annotated[str, typer.Option("--grid", help="Grid id, e.g. changjia-g017")],
    category: Annotated[Category, typer.Option("--category")],
    severity: Annotated[Severity, typer.Option("--severity")],
    stage: Annotated[str, typer.Option("--stage", help="reported or whistled")] = "reported",
    rules_file: Annotated[Path | None, typer.Option("--rules", help="Rules file (default GW_RULES_PATH)")] = None,
) -> None:
    """Print the rule that matches a matter, and why the earlier ones did not."""
    registry, book = _load(rules_file)
    if stage not in ("reported", "whistled"):
        raise typer.BadParameter("--stage must be reported or whistled")
    if not registry.has_grid(grid):
        raise typer.BadParameter(f"unknown grid {grid!r}")
    town_id = registry.grid(grid).town_id
    result = book.explain(category.value, severity.value, town_id, grid, stage)  # type: ignore[arg-type]
    out = Console()
    for rule_id, why in result.trace:
        out.print(f"  [dim]skip {rule_id}: {why}[/]")
    if result.route is None or result.rule is None:
        out.print("[red]no rule matches[/]")
        raise typer.Exit(1)
    route = result.route
    out.print(
        f"[bold]match {route.rule_id}[/]: first rule whose match fits {category.value}/{severity.value}"
        f" in {grid} ({town_id}, stage {stage})"
    )
    out.print(f"  tier {route.tier.value}, priority {route.priority.value}")
    if route.lead:
        out.print(f"  lead {route.lead}; supporting {', '.join(route.supporting) or '-'}")
    out.print(f"  accept within {route.accept_within}, resolve within {route.resolve_within}")


@dispatch_app.command("serve")
def serve_command(
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default GW_DISPATCH_PORT, 8020)")] = None,
) -> None:
    """Run the dispatch service until SIGINT/SIGTERM."""
    from services.dispatch.app import SERVICE, create_app
    from services.dispatch.config import DispatchSettings
    from shared.service import run_service

    settings = DispatchSettings()
    run_service(SERVICE, create_app, settings, port=settings.dispatch_port if port is None else port)


# ---------------------------------------------------------------- dept
async def _run_client(client: DepartmentClient, seconds: float | None, *, live: bool, actions: bool = False) -> None:
    from rich.live import Live

    from services.dispatch.inbox import inbox_table

    await client.broker.connect()
    await client.declare()
    await client.broker.start()
    try:
        if actions:
            await _inbox_session(client)
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


async def _inbox_session(client: DepartmentClient) -> None:
    """Table, prompt, action, table again — until ``q`` or end of input. Work items keep arriving
    in the background; Enter shows them."""
    from services.dispatch.inbox import ActionError, carry_out, inbox_table, parse_action

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
            if action is not None:
                item, command = await carry_out(action, client)
                out.print(f"[green]{command.command_type}[/] sent for {str(item.matter_id)[:8]} (round {item.round})")
        except ActionError as error:
            out.print(f"[red]{error}[/]")


def _client(department_id: str, *, on_item: object = None) -> DepartmentClient:
    from services.dispatch.config import DispatchSettings
    from shared.broker import make_broker
    from shared.department_client import DepartmentClient

    broker = make_broker(DispatchSettings(), service="dept")
    client = DepartmentClient(broker, department_id, on_item=on_item)  # type: ignore[arg-type]
    client.subscribe()
    return client


@dept_app.command("inbox")
def inbox(
    department_id: Annotated[str, typer.Argument(help="e.g. changjia.civil_affairs")],
    seconds: Annotated[float | None, typer.Option("--seconds", help="Watch only: stop after this long")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="A live table without actions")] = False,
) -> None:
    """The department's open matters with their deadlines (consumes dept.<id>), and actions on them.

    In a terminal: a numbered table and a prompt — `a 2` accept, `r 2 <reason>` return,
    `d 2 [note]` resolve, `w 2 <reason>` whistle up, Enter refresh, `q` quit. With --watch,
    --seconds or when input is not a terminal: a live table only.
    """
    import sys

    actions = not watch and seconds is None and sys.stdin.isatty()
    asyncio.run(_run_client(_client(department_id), seconds, live=True, actions=actions))


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
        await client.declare()
        await client.broker.start()
        try:
            await done.wait()
        finally:
            await client.broker.stop()
        Console().print(f"handled {handled} matters")

    asyncio.run(run())
