"""``gridwhistle registry``: show and check registries, scaffold a county (mount ``registry_app``)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.registry.core import Counts, Registry
from shared.registry.loader import RegistryError, display_path, load_registry
from shared.settings import PROJECT_ROOT
from tools.registry.generator import write_county_registry

REGISTRY_DIR = PROJECT_ROOT / "deploy" / "config" / "registry"
CHANGJIA_PATH = REGISTRY_DIR / "changjia.yaml"
COUNTY_DIR = REGISTRY_DIR / "county"

registry_app = typer.Typer(
    help="Registry of towns, grids, staff and departments (YAML under deploy/config/registry).",
    no_args_is_help=True,
)


def _load_or_exit(paths: list[Path]) -> Registry:
    try:
        return load_registry(*paths)
    except RegistryError as exc:
        err = Console(stderr=True, highlight=False)
        err.print("[bold red]registry invalid[/]", markup=True)
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None


_HEADERS = {"village_grids": "villages", "community_grids": "communities", "micro_grid_members": "micro members"}


def summary_table(registry: Registry) -> Table:
    """One row per town plus a total: grids, leaders, members, micro-grids, departments."""
    table = Table(title=f"Registry of {registry.county.name} ({registry.county_id})")
    table.add_column("town")
    for column in fields(Counts):
        table.add_column(_HEADERS.get(column.name, column.name.replace("_", " ")), justify="right")
    for town in registry.towns:
        table.add_row(f"{town.town_id} {town.name_zh}", *(str(v) for v in registry.counts(town.town_id).as_tuple()))
    table.add_section()
    table.add_row(f"{len(registry.towns)} towns", *(str(v) for v in registry.counts().as_tuple()), style="bold")
    table.caption = f"departments total includes {len(registry.county_departments)} county departments"
    return table


@registry_app.command("show")
def show(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Registry files or directories (default: GW_REGISTRY_PATH)", show_default=False),
    ] = None,
) -> None:
    """Print a summary table of a registry."""
    registry = _load_or_exit(paths or [])
    console = Console()
    console.print(summary_table(registry))


@registry_app.command("check")
def check(
    paths: Annotated[list[Path], typer.Argument(help="Registry files or directories to validate")],
) -> None:
    """Validate a registry; exit 1 with the problems (file, entry, field) if it is invalid."""
    registry = _load_or_exit(paths)
    total = registry.counts()
    typer.echo(
        f"OK {', '.join(display_path(p) for p in paths)}: {len(registry.towns)} towns, {total.grids} grids, "
        f"{total.leaders} leaders, {total.members} members, {total.micro_grids} micro-grids, "
        f"{total.departments} departments, {total.squads} volunteer squads ({total.volunteers} people), "
        f"{total.service_items} service items"
    )


@registry_app.command("generate-county")
def generate_county(
    towns: Annotated[int, typer.Option(min=1, max=99, help="Towns in the county, Changjia included")] = 10,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files")] = 1,
    out: Annotated[Path, typer.Option(help="Directory to write")] = COUNTY_DIR,
    changjia: Annotated[Path, typer.Option(help="Changjia file that county.yaml includes")] = CHANGJIA_PATH,
    embed_changjia: Annotated[
        bool, typer.Option("--embed-changjia", help="Write Changjia into the directory instead of including it")
    ] = False,
) -> None:
    """Generate a county registry (Changjia + made-up towns) for scale tests."""
    written = write_county_registry(out, towns, seed, changjia=None if embed_changjia else changjia)
    for path in written:
        typer.echo(f"wrote {display_path(path)}")
    Console().print(summary_table(_load_or_exit([out])))
