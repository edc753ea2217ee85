"""``gridwhistle console``: ``serve`` the web console, ``issue`` a sign-in credential (department, grid, supervisor)."""

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
    department: Annotated[str | None, typer.Option("--department", help="e.g. changjia.civil_affairs")] = None,
    grid: Annotated[str | None, typer.Option("--grid", help="Grid staff of a grid, e.g. changjia-g017")] = None,
    staff: Annotated[
        str | None, typer.Option("--staff", help="With --grid: who acts (default: the grid leader)")
    ] = None,
    supervisor: Annotated[
        str | None,
        typer.Option("--supervisor", help="A grid instructor's staff id, or a town (its first instructor)"),
    ] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Expire after N days (default: never)")] = None,
) -> None:
    """Print a sign-in credential for a department, a grid or a supervisor, signed with GW_TOKEN_SECRET."""
    from services.console.credentials import (
        issue_credential,
        issue_grid_credential,
        issue_supervisor_credential,
    )
    from shared.registry import StaffRole, load_registry

    if sum(x is not None for x in (department, grid, supervisor)) != 1:
        raise typer.BadParameter("name exactly one of --department, --grid, --supervisor")
    if staff is not None and grid is None:
        raise typer.BadParameter("--staff goes with --grid", param_hint="--staff")
    settings = ConsoleSettings()
    registry = load_registry(settings.registry_path)
    valid_for = timedelta(days=days) if days else None
    if department is not None:
        if not registry.has_department(department):
            raise typer.BadParameter(f"unknown department {department!r}", param_hint="--department")
        scope = registry.department(department).scope
        typer.echo(
            issue_credential(settings.token_secret, department_id=department, town_id=scope, valid_for=valid_for)
        )
        return
    if grid is not None:
        if not registry.has_grid(grid):
            raise typer.BadParameter(f"unknown grid {grid!r}", param_hint="--grid")
        record = registry.grid(grid)
        actor = staff or record.leader.staff_id
        if actor not in {s.staff_id for s in registry.staff_of_grid(grid)}:
            raise typer.BadParameter(f"{actor!r} is not staff of grid {grid!r}", param_hint="--staff")
        credential = issue_grid_credential(
            settings.token_secret, grid_id=grid, town_id=record.town_id, staff_id=actor, valid_for=valid_for
        )
        typer.echo(credential)
        return
    assert supervisor is not None
    if registry.has_town(supervisor):
        instructors = registry.town(supervisor).supervisors
        if not instructors:
            raise typer.BadParameter(f"town {supervisor!r} has no instructors", param_hint="--supervisor")
        supervisor = instructors[0].staff_id
    if not registry.has_staff(supervisor) or registry.staff(supervisor).role is not StaffRole.INSTRUCTOR:
        raise typer.BadParameter(f"{supervisor!r} is neither a town nor an instructor", param_hint="--supervisor")
    town_id = registry.staff(supervisor).town_id
    typer.echo(
        issue_supervisor_credential(
            settings.token_secret, supervisor_id=supervisor, town_id=town_id, valid_for=valid_for
        )
    )
