"""Generate the Grafana dashboards in ``deploy/grafana/dashboards/`` from code.

    .venv/bin/python -m tools.dashboards          # rewrite the JSON files
    .venv/bin/python -m tools.dashboards --check  # exit 1 if a checked-in file differs

The JSON is checked in (Grafana provisions it as is); ``tests/unit/test_deploy_grafana.py``
fails when it differs from what this module generates, and
``tests/connected/test_dashboards_promql.py`` evaluates every panel's PromQL against a real
Prometheus scraping the running services. Panels listed in ``MAY_BE_EMPTY`` show things a
healthy run need not produce (SLA breaches, handler exceptions...); every other panel must
have data under simulated load.

Every panel reads the datasource chosen in the ``datasource`` variable (no hard-coded uid: the
provisioned Prometheus is only the default). Replica-safe: the database-wide figures of stats
(``gridwhistle_open_matters``, ``..._matters_reported_total``, ...) are exported identically
by every stats replica, so panels collapse replicas with ``max by (<the figure's labels>)``
before summing (``db()`` below); per-process figures (FastStream, HTTP, events applied) are
summed over replicas, and panels showing one line per replica say "per replica".

Written by hand rather than with a dashboard SDK: five dashboards of plain timeseries/stat
panels need a few dataclasses, not a dependency.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DEFAULT_DATASOURCE = "prometheus"
"""uid of the provisioned Prometheus (deploy/grafana/provisioning/datasources): the variable's default."""
SCHEMA_VERSION = 39
GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"  # timeseries | stat | bargauge | table
    unit: str = "short"
    width: int = 12
    height: int = 8
    description: str = ""
    may_be_empty: str = ""  # why this panel may legitimately show no data

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        targets = [
            {
                "datasource": DATASOURCE,
                "expr": q.expr,
                "legendFormat": q.legend or "__auto",
                "refId": chr(ord("A") + i),
                "instant": self.kind in ("stat", "bargauge", "table"),
                "range": self.kind == "timeseries",
            }
            for i, q in enumerate(self.queries)
        ]
        options: dict[str, Any] = {}
        if self.kind == "timeseries":
            options = {"legend": {"displayMode": "table", "placement": "right", "showLegend": True}}
        elif self.kind in ("stat", "bargauge"):
            options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": self.unit}, "overrides": []},
            "options": options,
            "targets": targets,
        }


@dataclass(frozen=True)
class TextPanel:
    title: str
    content: str
    width: int = 24
    height: int = 4

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        return {
            "id": panel_id,
            "type": "text",
            "title": self.title,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "options": {"mode": "markdown", "content": self.content},
        }


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str  # a Grafana label_values(...) query

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": self.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "definition": self.query,
            "refresh": 2,
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
        }


DATABASE_WIDE = (
    "gridwhistle_open_matters",
    "gridwhistle_unaccepted_matters",
    "gridwhistle_oldest_open_matter_age_seconds",
    "gridwhistle_sla_breaches_total",
    "gridwhistle_returns_total",
    "gridwhistle_matters_reported_total",
    "gridwhistle_matters_closed_total",
    "gridwhistle_closure_ratio",
)
"""Read from MongoDB by stats: every replica exports the same value (services/stats/metrics.py)."""


def datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "refresh": 1,
        "hide": 0,
        "current": {"selected": False, "text": "Prometheus", "value": DEFAULT_DATASOURCE},
    }


def db(aggregate: str, metric: str, keep: str, selector: str = "", *, fn: str = "", window: str = "") -> str:
    """A database-wide figure of stats, replica-safe: ``max by (keep)`` over replicas, then ``aggregate``.

    ``db("sum by (town)", "gridwhistle_open_matters", "town, department, lateness", sel)`` ->
    ``sum by (town) (max by (town, department, lateness) (gridwhistle_open_matters{sel}))``.
    ``fn``/``window`` wrap the series (``rate``/``increase`` over ``[window]``) before the max.
    """
    series = f"{metric}{{{selector}}}" if selector else metric
    if fn:
        series = f"{fn}({series}[{window}])"
    inner = f"max by ({keep}) ({series})"
    return f"{aggregate} ({inner})" if aggregate else inner


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel | TextPanel, ...]
    variables: tuple[Variable, ...] = field(default=())
    tags: tuple[str, ...] = ("gridwhistle",)

    @property
    def filename(self) -> str:
        return f"{self.uid}.json"

    def to_json(self) -> dict[str, Any]:
        laid_out: list[dict[str, Any]] = []
        x = y = row_height = 0
        for panel_id, panel in enumerate(self.panels, start=1):
            if x + panel.width > GRID_WIDTH:
                x, y, row_height = 0, y + row_height, 0
            laid_out.append(panel.to_json(panel_id, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "browser",
            "editable": False,
            "graphTooltip": 1,
            "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "links": [{"type": "dashboards", "tags": ["gridwhistle"], "asDropdown": True, "title": "Gridwhistle"}],
            "templating": {"list": [datasource_variable(), *(v.to_json() for v in self.variables)]},
            "annotations": {"list": []},
            "panels": laid_out,
        }


TOWN = Variable("town", "Town", "label_values(gridwhistle_matters_reported_total, town)")
DEPARTMENT = Variable("department", "Department", 'label_values(gridwhistle_open_matters{town=~"$town"}, department)')
GRID_TIERS = "micro_grid|grid_member|grid_leader"
NO_BREACH = "no matter missed a deadline in the window"
BY_CATEGORY = "town, category"
BY_DEPARTMENT = "town, department"
BY_LATENESS = "town, department, lateness"
BY_DEADLINE = "town, department, deadline"


def county_overview() -> Dashboard:
    sel = 'town=~"$town"'
    reported, closed = "gridwhistle_matters_reported_total", "gridwhistle_matters_closed_total"
    return Dashboard(
        uid="gw-county-overview",
        title="Gridwhistle / County overview",
        description="Matters per second, closure rate and open backlog for every town of the county.",
        variables=(TOWN,),
        panels=(
            Panel(
                "Matters reported per second",
                (Query(db("sum", reported, BY_CATEGORY, sel, fn="rate", window="5m")),),
                kind="stat",
                unit="reqps",
                width=6,
                height=5,
            ),
            Panel(
                "Matters closed per second",
                (Query(db("sum", closed, BY_CATEGORY, sel, fn="rate", window="5m")),),
                kind="stat",
                unit="reqps",
                width=6,
                height=5,
            ),
            Panel(
                "Closure rate (closed / reported)",
                (
                    Query(
                        f"{db('sum', closed, BY_CATEGORY, sel)} / clamp_min({db('sum', reported, BY_CATEGORY, sel)}, 1)"
                    ),
                ),
                kind="stat",
                unit="percentunit",
                width=6,
                height=5,
            ),
            Panel(
                "Open matters",
                (Query(db("sum", "gridwhistle_open_matters", BY_LATENESS, sel)),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Matters reported per second by town",
                (Query(db("sum by (town)", reported, BY_CATEGORY, sel, fn="rate", window="5m"), "{{town}}"),),
                unit="reqps",
            ),
            Panel(
                "Matters closed per second by town",
                (Query(db("sum by (town)", closed, BY_CATEGORY, sel, fn="rate", window="5m"), "{{town}}"),),
                unit="reqps",
            ),
            Panel(
                "Closure rate by town",
                (Query(db("", "gridwhistle_closure_ratio", "town", sel), "{{town}}"),),
                kind="bargauge",
                unit="percentunit",
            ),
            Panel(
                "Open backlog by town",
                (Query(db("sum by (town)", "gridwhistle_open_matters", BY_LATENESS, sel), "{{town}}"),),
                kind="bargauge",
            ),
            Panel(
                "Matters reported in the last hour by category",
                (
                    Query(
                        db("sum by (category)", reported, BY_CATEGORY, sel, fn="increase", window="1h"),
                        "{{category}}",
                    ),
                ),
                kind="bargauge",
            ),
            Panel(
                "SLA breaches in the last hour by town",
                (
                    Query(
                        db(
                            "sum by (town)",
                            "gridwhistle_sla_breaches_total",
                            BY_DEADLINE,
                            sel,
                            fn="increase",
                            window="1h",
                        ),
                        "{{town}}",
                    ),
                ),
                kind="bargauge",
                may_be_empty=NO_BREACH,
            ),
        ),
    )


def department_backlog() -> Dashboard:
    sel = 'town=~"$town", department=~"$department"'
    queue = 'queue=~"dept[.]($department)"'
    return Dashboard(
        uid="gw-department-backlog",
        title="Gridwhistle / Department backlog",
        description="Per department: queue depth, open and unaccepted matters, oldest open matter, returns.",
        variables=(TOWN, DEPARTMENT),
        panels=(
            Panel(
                "Department queue depth (ready / unacked)",
                (
                    Query(f"max by (queue) (rabbitmq_queue_messages_ready{{{queue}}})", "{{queue}} ready"),
                    Query(f"max by (queue) (rabbitmq_queue_messages_unacked{{{queue}}})", "{{queue}} unacked"),
                ),
                description="RabbitMQ's own per-queue metrics (rabbitmq_prometheus, /metrics/per-object).",
            ),
            Panel(
                "Unaccepted matters by department",
                (
                    Query(
                        db("sum by (department)", "gridwhistle_unaccepted_matters", BY_DEPARTMENT, sel),
                        "{{department}}",
                    ),
                ),
                description="Dispatched to the department in the current round and not accepted yet.",
            ),
            Panel(
                "Open matters by lateness",
                (Query(db("sum by (lateness)", "gridwhistle_open_matters", BY_LATENESS, sel), "{{lateness}}"),),
            ),
            Panel(
                "Open matters by department",
                (Query(db("sum by (department)", "gridwhistle_open_matters", BY_LATENESS, sel), "{{department}}"),),
                kind="bargauge",
            ),
            Panel(
                "Oldest open matter",
                (
                    Query(
                        f"max by (department) (gridwhistle_oldest_open_matter_age_seconds{{{sel}}})",
                        "{{department}}",
                    ),
                ),
                kind="bargauge",
                unit="s",
            ),
            Panel(
                "Returns in the last hour",
                (
                    Query(
                        db(
                            "sum by (department)",
                            "gridwhistle_returns_total",
                            BY_DEPARTMENT,
                            sel,
                            fn="increase",
                            window="1h",
                        ),
                        "{{department}}",
                    ),
                ),
                kind="bargauge",
            ),
            Panel(
                "Consumers on department queues",
                (Query(f"max by (queue) (rabbitmq_queue_consumers{{{queue}}})", "{{queue}}"),),
                kind="bargauge",
                description="0 means nobody reads the queue: the department's app or bot is down.",
            ),
            Panel(
                "SLA breaches in the last hour by deadline",
                (
                    Query(
                        db(
                            "sum by (department, deadline)",
                            "gridwhistle_sla_breaches_total",
                            BY_DEADLINE,
                            sel,
                            fn="increase",
                            window="1h",
                        ),
                        "{{department}} {{deadline}}",
                    ),
                ),
                kind="bargauge",
                may_be_empty=NO_BREACH,
            ),
        ),
    )


def grid_view() -> Dashboard:
    return Dashboard(
        uid="gw-grid-view",
        title="Gridwhistle / Grid tier",
        description="Work that stays in the grids (micro-grid, grid member, grid leader) and whistles to departments.",
        variables=(TOWN,),
        panels=(
            TextPanel(
                "Per-grid figures",
                "Prometheus carries no `grid_id` label (hundreds of grids per county would multiply every "
                "series). Per-grid counts, closure and on-time rates come from the stats service: "
                "`GET /v1/stats/grids/<grid_id>` on port 8030.",
                height=3,
            ),
            Panel(
                "Matters routed to grid tiers per second",
                (
                    Query(
                        f'sum by (tier) (rate(gridwhistle_dispatch_routed_total{{tier=~"{GRID_TIERS}"}}[5m]))',
                        "{{tier}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Matters routed per second by tier and priority",
                (
                    Query(
                        "sum by (tier, priority) (rate(gridwhistle_dispatch_routed_total[5m]))",
                        "{{tier}} {{priority}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Grid staff queue (ready)",
                (Query('max by (queue) (rabbitmq_queue_messages_ready{queue=~"grid[.]($town)"})', "{{queue}}"),),
            ),
            Panel(
                "Supervision queue (ready)",
                (
                    Query(
                        'max by (queue) (rabbitmq_queue_messages_ready{queue=~"supervision[.]($town)"})',
                        "{{queue}}",
                    ),
                ),
            ),
            Panel(
                "Grid-tier work published per second (transport)",
                (
                    Query(
                        "sum by (destination) (rate(faststream_published_messages_total{"
                        f'destination=~"gw[.]dispatch[.]($town)[.]({GRID_TIERS})[.].*"}}[5m]))',
                        "{{destination}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Whistles to departments in the last hour",
                (
                    Query(
                        "sum by (outcome) "
                        '(increase(gridwhistle_dispatch_commands_total{command="whistle_matter"}[1h]))',
                        "{{outcome}}",
                    ),
                ),
                kind="bargauge",
                may_be_empty="no grid staff whistled a matter up in the window",
            ),
        ),
    )


def transport_health() -> Dashboard:
    return Dashboard(
        uid="gw-transport-health",
        title="Gridwhistle / Transport health",
        description="FastStream consumers and publishers, RabbitMQ queues and dead letters, intake confirms.",
        panels=(
            Panel(
                "Scrape targets up",
                (Query('up{job=~"gridwhistle-.+|rabbitmq.*"}', "{{job}} {{instance}}"),),
                kind="bargauge",
                width=24,
                height=5,
            ),
            Panel(
                "Messages received per second by service",
                (Query("sum by (app_name) (rate(faststream_received_messages_total[5m]))", "{{app_name}}"),),
                unit="reqps",
            ),
            Panel(
                "Messages processed per second by status",
                (
                    Query(
                        "sum by (app_name, status) (rate(faststream_received_processed_messages_total[5m]))",
                        "{{app_name}} {{status}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Handler duration p95",
                (
                    Query(
                        "histogram_quantile(0.95, sum by (app_name, le) "
                        "(rate(faststream_received_processed_messages_duration_seconds_bucket[5m])))",
                        "{{app_name}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Published per second by exchange route and status",
                (
                    Query(
                        "sum by (app_name, destination, status) (rate(faststream_published_messages_total[5m]))",
                        "{{app_name}} {{destination}} {{status}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Handler exceptions per second",
                (
                    Query(
                        "sum by (app_name, exception_type) "
                        "(rate(faststream_received_processed_messages_exceptions_total[5m]))",
                        "{{app_name}} {{exception_type}}",
                    ),
                ),
                unit="reqps",
                may_be_empty="no handler raised in the window",
            ),
            Panel(
                "Intake publish-confirm p95",
                (
                    Query(
                        "histogram_quantile(0.95, sum by (le) "
                        "(rate(gridwhistle_intake_publish_confirm_seconds_bucket[5m])))",
                        "p95",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Intake requests per second by outcome",
                (Query("sum by (outcome) (rate(gridwhistle_intake_requests_total[5m]))", "{{outcome}}"),),
                unit="reqps",
            ),
            Panel(
                "Dispatch commands per second by outcome",
                (
                    Query(
                        "sum by (command, outcome) (rate(gridwhistle_dispatch_commands_total[5m]))",
                        "{{command}} {{outcome}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Dispatch outbox pending",
                (Query("sum(gridwhistle_dispatch_outbox_pending)", "pending"),),
                description="Events written to a case but not yet confirmed by the broker; should hover near 0.",
            ),
            Panel(
                "Events applied by stats per second",
                (Query("sum by (event_type) (rate(gridwhistle_events_applied_total[5m]))", "{{event_type}}"),),
                unit="reqps",
            ),
            Panel(
                "Stats read-model snapshot up (per replica)",
                (Query("min by (instance) (gridwhistle_read_model_snapshot_up)", "{{instance}}"),),
                kind="bargauge",
                description="One bar per stats replica: 0 when its last MongoDB snapshot read failed.",
            ),
            Panel(
                "HTTP request duration p95 by service",
                (
                    Query(
                        "histogram_quantile(0.95, sum by (service, le) "
                        "(rate(gridwhistle_http_request_duration_seconds_bucket[5m])))",
                        "{{service}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "HTTP requests per second by service and status",
                (
                    Query(
                        "sum by (service, status) (rate(gridwhistle_http_request_duration_seconds_count[5m]))",
                        "{{service}} {{status}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Dead-letter queues",
                (Query('max by (queue) (rabbitmq_queue_messages_ready{queue=~".+[.]dead"})', "{{queue}}"),),
                description="Queue-level broker figures are on the RabbitMQ overview dashboard.",
            ),
        ),
    )


def rabbitmq_overview() -> Dashboard:
    """What an operator looks at on the broker: queues, rates, unroutable, connections, alarms."""
    per_queue = 'queue=~"$queue"'
    return Dashboard(
        uid="gw-rabbitmq-overview",
        title="Gridwhistle / RabbitMQ overview",
        description="RabbitMQ's own metrics (rabbitmq_prometheus): queue depth and rates, unroutable, "
        "connections, memory and disk alarms. One line per node where the figure is per node.",
        variables=(Variable("queue", "Queue", 'label_values(rabbitmq_queue_messages_ready{queue!=""}, queue)'),),
        panels=(
            Panel(
                "Alarms (memory, disk, file descriptors)",
                (
                    Query("max by (instance) (rabbitmq_alarms_memory_used_watermark)", "memory {{instance}}"),
                    Query("max by (instance) (rabbitmq_alarms_free_disk_space_watermark)", "disk {{instance}}"),
                    Query("max by (instance) (rabbitmq_alarms_file_descriptor_limit)", "fd {{instance}}"),
                ),
                kind="stat",
                width=24,
                height=4,
                description="1 = the alarm is raised: publishers on every connection are blocked.",
            ),
            Panel(
                "Ready messages, top 15 queues",
                (Query(f"topk(15, max by (queue) (rabbitmq_queue_messages_ready{{{per_queue}}}))", "{{queue}}"),),
            ),
            Panel(
                "Unacknowledged messages, top 15 queues",
                (Query(f"topk(15, max by (queue) (rabbitmq_queue_messages_unacked{{{per_queue}}}))", "{{queue}}"),),
            ),
            Panel(
                "Messages published into queues per second, top 15",
                (
                    Query(
                        f"topk(15, max by (queue) (rate(rabbitmq_queue_messages_published_total{{{per_queue}}}[5m])))",
                        "{{queue}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Publish, deliver, acknowledge, redeliver per second",
                (
                    Query('sum(rate(rabbitmq_channel_messages_published_total{job="rabbitmq"}[5m]))', "published"),
                    Query('sum(rate(rabbitmq_channel_messages_delivered_ack_total{job="rabbitmq"}[5m]))', "delivered"),
                    Query('sum(rate(rabbitmq_channel_messages_acked_total{job="rabbitmq"}[5m]))', "acked"),
                    Query('sum(rate(rabbitmq_channel_messages_redelivered_total{job="rabbitmq"}[5m]))', "redelivered"),
                ),
                unit="reqps",
            ),
            Panel(
                "Unroutable messages per second (returned / dropped)",
                (
                    Query(
                        'sum(rate(rabbitmq_channel_messages_unroutable_returned_total{job="rabbitmq"}[5m]))',
                        "returned",
                    ),
                    Query(
                        'sum(rate(rabbitmq_channel_messages_unroutable_dropped_total{job="rabbitmq"}[5m]))',
                        "dropped",
                    ),
                ),
                unit="reqps",
                description="Our publishers use mandatory: an unroutable message is returned and counted as an error.",
            ),
            Panel(
                "Connections, channels and consumers",
                (
                    Query('sum by (instance) (rabbitmq_connections{job="rabbitmq"})', "connections {{instance}}"),
                    Query('sum by (instance) (rabbitmq_channels{job="rabbitmq"})', "channels {{instance}}"),
                    Query('sum by (instance) (rabbitmq_consumers{job="rabbitmq"})', "consumers {{instance}}"),
                ),
            ),
            Panel(
                "Consumers per queue (work queues)",
                (Query(f'max by (queue) (rabbitmq_queue_consumers{{{per_queue}, queue!~".+[.]dead"}})', "{{queue}}"),),
                kind="bargauge",
            ),
            Panel(
                "Memory used / high watermark",
                (
                    Query(
                        'max by (instance) (rabbitmq_process_resident_memory_bytes{job="rabbitmq"})',
                        "used {{instance}}",
                    ),
                    Query(
                        'max by (instance) (rabbitmq_resident_memory_limit_bytes{job="rabbitmq"})', "limit {{instance}}"
                    ),
                ),
                unit="bytes",
            ),
            Panel(
                "Free disk / disk alarm limit",
                (
                    Query(
                        'max by (instance) (rabbitmq_disk_space_available_bytes{job="rabbitmq"})', "free {{instance}}"
                    ),
                    Query(
                        'max by (instance) (rabbitmq_disk_space_available_limit_bytes{job="rabbitmq"})',
                        "limit {{instance}}",
                    ),
                ),
                unit="bytes",
            ),
        ),
    )


def dashboards() -> tuple[Dashboard, ...]:
    return (county_overview(), department_backlog(), grid_view(), transport_health(), rabbitmq_overview())


def render(dashboard: Dashboard) -> str:
    return json.dumps(dashboard.to_json(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def may_be_empty() -> dict[tuple[str, str], str]:
    """``(dashboard uid, panel title) -> reason`` for panels allowed to have no data."""
    return {
        (d.uid, p.title): p.may_be_empty
        for d in dashboards()
        for p in d.panels
        if isinstance(p, Panel) and p.may_be_empty
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a checked-in dashboard differs")
    args = parser.parse_args(argv)
    DASHBOARD_DIR.mkdir(parents=True, exist_ok=True)
    stale = []
    for dashboard in dashboards():
        path = DASHBOARD_DIR / dashboard.filename
        text = render(dashboard)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.stderr.write(f"stale dashboards (run python -m tools.dashboards): {', '.join(stale)}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
