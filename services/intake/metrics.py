"""Intake's business metrics (transport metrics come from FastStream's Prometheus middleware).

Labels stay bounded: ``route`` is a route template, ``outcome`` one of ``OUTCOMES``, ``field``
a known top-level field name or ``other``; never a matter or grid id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from prometheus_client import Counter, Histogram

from shared.contracts import ReportSubmission

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

OUTCOMES: Final = frozenset(
    {
        "accepted",
        "duplicate",
        "invalid",
        "malformed",
        "too_large",
        "unauthorized",
        "forbidden",
        "conflict",
        "not_found",
        "unavailable",
        "ok",
    }
)
KNOWN_FIELDS: Final = frozenset(
    {
        *ReportSubmission.model_fields,
        "body",
        "reports",
        "service_code",
        "jurisdiction_id",
        "description",
        "lat",
        "long",
        "address_string",
        "media_url",
        "email",
        "phone",
        "first_name",
        "last_name",
        "api_key",
        "attribute",
        "start_date",
        "end_date",
        "status",
        "service_request_id",
    }
)


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "gridwhistle_intake_requests",
            "Reports and Open311 calls handled, by route template and outcome",
            ["route", "outcome"],
            registry=registry,
        )
        self.validation_failures = Counter(
            "gridwhistle_intake_validation_failures",
            "Rejected submissions by (top-level) field at fault",
            ["field"],
            registry=registry,
        )
        self.publish_confirm = Histogram(
            "gridwhistle_intake_publish_confirm_seconds",
            "Time from publishing MatterReported to the broker's confirm",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )

    def request(self, route: str, outcome: str) -> None:
        self.requests.labels(route=route, outcome=outcome if outcome in OUTCOMES else "other").inc()

    def validation_failure(self, field: str) -> None:
        top = field.split(".", 1)[0].split("[", 1)[0]
        self.validation_failures.labels(field=top if top in KNOWN_FIELDS else "other").inc()
