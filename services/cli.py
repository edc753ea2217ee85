"""``gridwhistle``: one command for operators, departments and developers.

Each group lives beside what it operates on; this module only mounts them.
"""

from __future__ import annotations

import typer

from services.admin.cli import dlq_app, topology_app, users_app
from services.console.cli import console_app
from services.department.cli import dept_app
from services.dispatch.cli import dispatch_app
from services.intake.cli import intake_app
from services.intake.tokens import tokens_app
from services.simulator.cli import bench_command, chaos_command, run_command, simulate_command
from services.stats.cli import stats_app
from tools.registry.cli import registry_app
from tools.stack import stack_app

app = typer.Typer(
    name="gridwhistle",
    help="Gridwhistle: route grid matters to departments over RabbitMQ; read models in MongoDB.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(
    stack_app, name="stack", help="Local RabbitMQ, Mongo-wire store (SecantusDB) and Prometheus: up | down | status."
)
app.command("run", help="Everything on this machine: stack, services, bots, simulator, live console.")(run_command)
app.add_typer(intake_app, name="intake", help="The intake service (HTTP + AMQP reports).")
app.add_typer(dispatch_app, name="dispatch", help="The dispatch service and its routing rules.")
app.add_typer(stats_app, name="stats", help="The stats service, read models and rebuild.")
app.add_typer(console_app, name="console", help="The web console (departments) and its sign-in credentials.")
app.command("simulate", help="Replay a scenario through intake's public API.")(simulate_command)
app.add_typer(dept_app, name="dept", help="Department side: inbox and worker bot.")
app.add_typer(tokens_app, name="tokens", help="Issue grid bearer tokens and Open311 api keys.")
app.add_typer(users_app, name="users", help="Provision broker users and permissions.")
app.add_typer(topology_app, name="topology", help="Show or declare exchanges, queues and bindings.")
app.add_typer(dlq_app, name="dlq", help="List, show and replay dead letters.")
app.add_typer(registry_app, name="registry", help="Validate, show and generate registries.")
app.command("bench", help="The system beside its raw ceilings: throughput, latency, flat cost.")(bench_command)
app.command("chaos", help="Kill each service, restart the store and the broker under load; check the books.")(
    chaos_command
)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
