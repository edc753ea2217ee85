"""``gridwhistle intake``: ``serve`` the intake service (HTTP and AMQP in one process)."""

from __future__ import annotations

from typing import Annotated

import typer

intake_app = typer.Typer(help="The intake service (HTTP + AMQP reports).", no_args_is_help=True)


@intake_app.command("serve")
def serve_command(
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default GW_INTAKE_PORT, 8010)")] = None,
) -> None:
    """Run the intake service until SIGINT/SIGTERM."""
    from services.intake.app import SERVICE, create_app
    from services.intake.config import IntakeSettings
    from shared.service import run_service

    settings = IntakeSettings()
    run_service(SERVICE, create_app, settings, port=settings.intake_port if port is None else port)
