"""``gridwhistle dispatch``: serve, rules check, explain."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from shared.domain import Category, Severity

if TYPE_CHECKING:
    from services.dispatch.rules import RuleBook
    from shared.registry import Registry

dispatch_app = typer.Typer(help="The dispatch service and its routing rules.", no_args_is_help=True)
rules_app = typer.Typer(help="Routing rules (deploy/config/routing.yaml).", no_args_is_help=True)
dispatch_app.add_typer(rules_app, name="rules")

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
    from services.dispatch.rules import MatterFacts

    facts = MatterFacts(category=category.value, severity=severity.value, town_id=town_id, grid_id=grid)
    result = book.explain(facts, stage)  # type: ignore[arg-type]
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
