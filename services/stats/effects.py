"""What one event adds to the counters: a pure function of the event (and the registry).

All counter effects of an event land in ONE bucket document, the ``(town, day, shard)`` bucket
of the event; ``store.apply_batch`` merges a batch's increments per bucket and applies them in
the batch's transaction. Inside the bucket::

    totals.<figure>                        the town's figures for the day
    counts.<category>.<figure>             the same per category
    grids.<grid_id>.<figure>               per grid
    departments.<department~key>.<figure>  per department (the department's own events there)

Department ids contain a dot, which a Mongo-wire field name may not: ``department_key``
writes it as ``~`` (never part of a slug, so the mapping is reversible).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from shared.contracts import (
    MatterAccepted,
    MatterClosed,
    MatterCommandRejected,
    MatterDispatched,
    MatterEscalated,
    MatterFollowedUp,
    MatterReopened,
    MatterReported,
    MatterRerouted,
    MatterResolved,
    MatterReturned,
    MatterWhistled,
    SquadAssigned,
)
from shared.domain import MatterState, Tier

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

    from shared.contracts import AnyEvent, SupervisionVisitRecorded
    from shared.registry import Registry

MATTER_FIGURES: tuple[str, ...] = (
    "reported",
    "dispatched",  # dispatch rounds (a re-dispatch after a return counts again)
    "accepted",  # lead acceptances
    "accepted_on_time",
    "accept_ms",  # sum of waited_seconds (as integer milliseconds: sums stay exact)
    "resolved",  # lead resolutions: the matter is resolved
    "resolved_on_time",
    "resolve_ms",  # sum of handling_seconds
    "supervised",
    "closed",
    "closed_citizen_requests",  # closed matters that began as a citizen request (诉求)
    "closed_supervised",  # closed matters a supervisor stepped into (returned to supervision or escalated)
    "reopened",
    "feedback",  # closed + reopened: each carries a satisfaction score
    "satisfaction_sum",
    "returned",
    "rerouted",
    "whistled",
    "escalated_l1",
    "escalated_l2",
    "escalated_l3",
    "breached_accept",  # a first escalation (level 1) = one SLA breach
    "breached_resolve",
    "rejected",  # MatterCommandRejected
    "visits",  # supervision visits by grid instructors (SupervisionVisitRecorded)
    "followed_up",  # follow-ups of matters on those visits (MatterFollowedUp)
    "followed_up_matters",  # matters followed up at least once (their first follow-up)
    "closed_followed_up",  # followed-up matters closed: problems supervised to resolution (督促指导解决)
    "squad_assignments",  # volunteer squads given a minor matter (SquadAssigned)
    "squad_volunteers",  # people in those squads, summed over the assignments
)
"""Figures of towns and grids (per matter: lead actions only)."""

INSTRUCTOR_FIGURES: tuple[str, ...] = ("visits", "followed_up")
"""Figures of one grid instructor (``instructors.<staff_id>.<figure>`` in a bucket)."""

DEPARTMENT_FIGURES: tuple[str, ...] = (
    "dispatched",  # rounds where the department is lead or supporting
    "dispatched_lead",
    "accepted",  # accepted by the department (as lead or supporting)
    "accepted_on_time",
    "accept_ms",
    "resolved",  # resolved by the department (as lead or supporting)
    "resolved_on_time",
    "resolve_ms",
    "returned",  # returned (or released) by the department
    "escalated_l1",
    "escalated_l2",
    "escalated_l3",
    "breached_accept",
    "breached_resolve",
)


def department_key(department_id: str) -> str:
    return department_id.replace(".", "~")


def department_id_of(key: str) -> str:
    return key.replace("~", ".")


def day_of(moment: datetime, zone: tzinfo) -> str:
    """The calendar day (``YYYY-MM-DD``, in the configured zone) a moment is counted on."""
    return moment.astimezone(zone).date().isoformat()


BUCKET_SHARDS = 4
"""Counter buckets per (town, day), chosen by message id: concurrent batches of two stats replicas
mostly write different documents (fewer aborted transactions); queries sum the shards."""


def bucket_id(town_id: str, day: str, message_id: UUID) -> str:
    """``<town>|<day>|<shard>``: the same message always lands in the same shard."""
    return f"{town_id}|{day}|{message_id.int % BUCKET_SHARDS:02d}"


def millis(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass(frozen=True)
class CounterUpdate:
    """The ``$inc`` one event applies to its ``(town, day)`` bucket."""

    bucket_id: str
    town_id: str
    day: str
    category: str | None  # None: a grid's event (a visit), counted under no category
    grid_id: str
    matter: Counter[str] = field(default_factory=Counter)  # figures of the town, category and grid
    departments: dict[str, Counter[str]] = field(default_factory=dict)
    instructors: dict[str, Counter[str]] = field(default_factory=dict)

    def increments(self) -> dict[str, int]:
        """Dotted paths to ``$inc`` (empty when the event adds to no figure)."""
        inc: dict[str, int] = {}
        for figure, n in self.matter.items():
            inc[f"totals.{figure}"] = n
            if self.category is not None:
                inc[f"counts.{self.category}.{figure}"] = n
            inc[f"grids.{self.grid_id}.{figure}"] = n
        for department, figures in self.departments.items():
            for figure, n in figures.items():
                inc[f"departments.{department_key(department)}.{figure}"] = n
        for instructor, figures in self.instructors.items():
            for figure, n in figures.items():
                inc[f"instructors.{instructor}.{figure}"] = n
        return {path: n for path, n in inc.items() if n}

    def department(self, department_id: str) -> Counter[str]:
        return self.departments.setdefault(department_id, Counter())

    def instructor(self, staff_id: str) -> Counter[str]:
        return self.instructors.setdefault(staff_id, Counter())


def _count_escalation(event: MatterEscalated, figures: Counter[str]) -> None:
    figures[f"escalated_l{event.level}"] += 1
    if event.level == 1:
        figures[f"breached_{event.deadline}"] += 1


def visit_counter_update(visit: SupervisionVisitRecorded, zone: tzinfo) -> CounterUpdate:
    """A supervision visit counts on the day it took place, for the town, the grid and the instructor."""
    day = day_of(visit.visited_at, zone)
    update = CounterUpdate(bucket_id(visit.town_id, day, visit.message_id), visit.town_id, day, None, visit.grid_id)
    update.matter["visits"] += 1
    update.instructor(visit.instructor_id)["visits"] += 1
    return update


def counter_update(event: AnyEvent, registry: Registry, zone: tzinfo) -> CounterUpdate:
    """The counter effects of ``event`` (departments recognised through the registry)."""
    day = day_of(event.occurred_at, zone)
    update = CounterUpdate(
        bucket_id(event.town_id, day, event.message_id), event.town_id, day, event.category.value, event.grid_id
    )
    m = update.matter
    match event:
        case MatterReported():
            m["reported"] += 1
        case MatterDispatched():
            m["dispatched"] += 1
            if event.tier is Tier.DEPARTMENT:
                for department in dict.fromkeys([event.lead, *event.supporting]):
                    if registry.has_department(department):
                        figures = update.department(department)
                        figures["dispatched"] += 1
                        figures["dispatched_lead"] += department == event.lead
        case MatterAccepted():
            if event.role == "lead":
                m.update(accepted=1, accepted_on_time=int(event.on_time), accept_ms=millis(event.waited_seconds))
            if registry.has_department(event.by):
                update.department(event.by).update(
                    accepted=1, accepted_on_time=int(event.on_time), accept_ms=millis(event.waited_seconds)
                )
        case MatterResolved():
            if event.role == "lead":
                m.update(
                    resolved=1,
                    resolved_on_time=int(event.on_time),
                    resolve_ms=millis(event.handling_seconds),
                    supervised=int(event.supervised),
                )
            if registry.has_department(event.by):
                update.department(event.by).update(
                    resolved=1, resolved_on_time=int(event.on_time), resolve_ms=millis(event.handling_seconds)
                )
        case MatterClosed():
            m.update(
                closed=1,
                closed_citizen_requests=int(event.origin == "citizen_request"),
                closed_supervised=int(event.supervised),
                closed_followed_up=int(event.followed_up),
                feedback=1,
                satisfaction_sum=event.satisfaction,
            )
        case MatterFollowedUp():
            # Supervised to resolution once per matter: at its closure when it was followed up
            # before (MatterClosed.followed_up), or here when the first follow-up finds it closed.
            m.update(
                followed_up=1,
                followed_up_matters=int(event.first),
                closed_followed_up=int(event.first and event.matter.state is MatterState.CLOSED),
            )
            update.instructor(event.by)["followed_up"] += 1
        case SquadAssigned():
            m.update(squad_assignments=1, squad_volunteers=event.volunteers)
        case MatterReopened():
            m.update(reopened=1, feedback=1, satisfaction_sum=event.satisfaction)
        case MatterReturned():
            m["returned"] += 1
            if registry.has_department(event.by):
                update.department(event.by)["returned"] += 1
        case MatterRerouted():
            m["rerouted"] += 1
        case MatterWhistled():
            m["whistled"] += 1
        case MatterEscalated():
            _count_escalation(event, m)
            if registry.has_department(event.owner):
                _count_escalation(event, update.department(event.owner))
        case MatterCommandRejected():
            m["rejected"] += 1
    return update
