"""``gridwhistle stack up|down|status`` (also ``python -m tools.stack ...``)."""

from __future__ import annotations

import threading
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.settings import GwSettings
from tools.stack.core import Say, stack_down, stack_status, stack_up
from tools.stack.model import COMPONENTS, SelectionError, StackError, StackUpError, select_components

stack_app = typer.Typer(
    name="stack",
    help=(
        "Local dev stack: RabbitMQ (Debian package), the Mongo-wire store (SecantusDB's secantusd-rs, "
        "WiredTiger inside; built once per machine with cargo into ~/.cache/gridwhistle), Prometheus and "
        "Alertmanager (Debian packages; Alertmanager with its webhook receiver, tools/alert_inbox.py), "
        "all on 127.0.0.1 with data, logs and pid files under .state/. "
        "Components whose GW_AMQP_URL / GW_MONGO_URL point at another host are external: "
        "only their health is checked."
    ),
    no_args_is_help=True,
    add_completion=False,
)

_NAMES = ", ".join(COMPONENTS)
OnlyOption = Annotated[
    list[str] | None,
    typer.Option("--only", metavar="NAMES", help=f"Only these components, comma-separated or repeated ({_NAMES})."),
]
WithoutOption = Annotated[
    list[str] | None,
    typer.Option("--without", metavar="NAMES", help="Skip these components, e.g. --without prometheus."),
]
ClusterOption = Annotated[
    bool,
    typer.Option(
        "--cluster",
        help=(
            "Also the local three-node RabbitMQ cluster (rabbitmq-1..3: AMQP 127.0.0.1:5701-5703, "
            "UI 15701-15703); `--only cluster` for the cluster alone."
        ),
    ),
]


def console_say(console: Console) -> Say:
    """A progress printer for :func:`stack_up` / :func:`stack_down`: ``component: message`` lines."""
    lock = threading.Lock()

    def say(component: str, message: str) -> None:
        with lock:
            console.print(f"[bold cyan]{component}[/]: {escape(message)}", highlight=False)

    return say


def _select(only: list[str] | None, without: list[str] | None, cluster: bool = False) -> tuple[str, ...]:
    try:
        return select_components(only or (), without or (), cluster=cluster)
    except SelectionError as exc:
        raise typer.BadParameter(str(exc)) from None


def print_stack_error(exc: StackError, console: Console | None = None) -> None:
    """Print a failure and the log tails that explain it (to stderr by default)."""
    err = console or Console(stderr=True, highlight=False)
    for error in exc.errors if isinstance(exc, StackUpError) else [exc]:
        err.print(f"[bold red]{error.component}: {escape(error.message)}[/]")
        for path, lines in error.logs:
            if lines:
                err.print(f"[dim]--- last {len(lines)} lines of {path} ---[/]")
                for line in lines:
                    err.print(line, markup=False, highlight=False, soft_wrap=True)


@stack_app.command()
def up(only: OnlyOption = None, without: WithoutOption = None, cluster: ClusterOption = False) -> None:
    """Install what is missing (apt, go build) and start the stack; idempotent.

    Running components (ours, or healthy ones somebody else started on the same address) are
    left alone, so a second `up` takes about a second. Exits non-zero, with the component's
    log tail, when anything cannot be made available.
    """
    names = _select(only, without, cluster)
    console = Console(highlight=False)
    started = time.monotonic()
    try:
        stack_up(GwSettings(), names, say=console_say(console))
    except StackError as exc:
        print_stack_error(exc)
        raise typer.Exit(1) from None
    console.print(f"[green]stack up[/] ({', '.join(names)}) in {time.monotonic() - started:.1f}s")


@stack_app.command()
def down(only: OnlyOption = None, without: WithoutOption = None, cluster: ClusterOption = False) -> None:
    """Stop what `up` started, and nothing else.

    Uses the pids in .state/pids/, checks each still belongs to our process (psutil: cmdline and
    environment) before signalling: SIGTERM (RabbitMQ: `rabbitmqctl stop` first), SIGKILL after a
    timeout. Data under
    .state/ is kept.
    """
    names = _select(only, without, cluster)
    console = Console(highlight=False)
    try:
        stack_down(GwSettings(), names, say=console_say(console))
    except StackError as exc:
        print_stack_error(exc)
        raise typer.Exit(1) from None


@stack_app.command()
def status(only: OnlyOption = None, without: WithoutOption = None, cluster: ClusterOption = False) -> None:
    """Show each component: who manages it, pid, address and health. Exits 1 if any is down."""
    rows = stack_status(GwSettings(), _select(only, without, cluster))
    table = Table(title="gridwhistle stack", title_justify="left")
    for column in ("component", "managed by", "pid", "address", "health"):
        table.add_column(column, overflow="fold")
    for row in rows:
        health = f"[green]ok[/] {escape(row.detail)}" if row.healthy else f"[red]down[/] {escape(row.detail)}"
        table.add_row(row.name, row.managed, str(row.pid or "-"), row.address, health)
    Console(highlight=False).print(table)
    if not all(row.healthy for row in rows):
        raise typer.Exit(1)
