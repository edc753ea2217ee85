"""``gridwhistle intake``: run the intake service (HTTP and AMQP in one process)."""

from __future__ import annotations

from typing import Annotated

import typer

intake_app = typer.Typer(help="The intake service (HTTP + AMQP reports).", invoke_without_command=True)


@intake_app.callback()
def run(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default GW_INTAKE_PORT or 8010)")] = None,
) -> None:
    """Serve intake until SIGINT/SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    from services.intake.app import main

    main(port=port)
