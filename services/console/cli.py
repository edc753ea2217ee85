"""``gridwhistle console``: ``serve`` the web console, ``issue`` a department's sign-in credential."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from services.console.config import ConsoleSettings

console_app = typer.Typer(help="The web console: serve it, issue sign-in credentials.", no_args_is_help=True)


@console_app.command("serve")
def serve_command(
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default GW_CONSOLE_PORT, 8040)")] = None,
) -> None:
    """Run the console until SIGINT/SIGTERM."""
    from services.console.app import SERVICE, create_app
    from shared.service import run_service

    settings = ConsoleSettings()
    run_service(SERVICE, create_app, settings, port=settings.console_port if port is None else port)


@console_app.command("issue")
def issue_command(
    department: Annotated[str, typer.Option("--department", help="e.g. changjia.civil_affairs")],
    days: Annotated[int | None, typer.Option("--days", min=1, help="Expire after N days (default: never)")] = None,
) -> None:
    """Print a sign-in credential for a department, signed with GW_TOKEN_SECRET."""
    from services.console.credentials import issue_credential
    from shared.registry import load_registry

    settings = ConsoleSettings()
    registry = load_registry(settings.registry_path)
    if not registry.has_department(department):
        raise typer.BadParameter(f"unknown department {department!r}", param_hint="--department")
    credential = issue_credential(
        settings.token_secret,
        department_id=department,
        town_id=registry.department(department).scope,
        valid_for=timedelta(days=days) if days else None,
    )
    typer.echo(credential)
