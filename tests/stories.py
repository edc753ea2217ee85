"""Matters driven through dispatch's pure ``decide``: the real events, snapshots included.

Used by dispatch's rule tests and by every stats test that needs a matter's events: stats keeps
what dispatch decided, so its tests feed it what dispatch really publishes, not a hand-made copy.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from services.dispatch.case_state import Context, FollowUp
from services.dispatch.decide import decide
from tests import factories
from tests.fakes.dispatch import T0, registry_and_rules

if TYPE_CHECKING:
    from services.dispatch.case import Case
    from services.dispatch.decide import Transition

__all__ = ["T0", "Matter", "context"]


def context(minutes: float = 0) -> Context:
    registry, rules = registry_and_rules()
    return Context(rules, registry, T0 + timedelta(minutes=minutes), timedelta(minutes=15))


class Matter:
    """One matter driven through ``decide`` alone: the case after each message, and every event."""

    def __init__(self, category: str, severity: str, **report: Any) -> None:
        self.id = uuid.uuid4()
        self.reported = factories.reported(category, severity, reported_at=T0, matter_id=self.id, **report)
        self.case: Case | None = None
        self.events: list[Any] = [self.reported]  # what stats receives: the report and dispatch's events
        self.minutes = 0.0

    def send(self, message: Any, *, after_minutes: float = 0) -> Transition:
        self.minutes += after_minutes
        transition = decide(self.case, message, context(self.minutes))
        if transition.changes:
            self.case = transition.case
            self.events += [o.event for o in transition.outbound]
        return transition

    def report(self) -> Matter:
        assert self.send(self.reported).outcome == "applied"
        return self

    def command(self, kind: str, actor: str, round_: int | None = None, **fields: Any) -> Transition:
        return self.send(self.make(kind, actor, round_, **fields))

    def make(self, kind: str, actor: str, round_: int | None = None, **fields: Any) -> Any:
        return factories.command(kind, self.id, actor, round_ or self.now.round, **fields)

    @property
    def now(self) -> Case:
        assert self.case is not None
        return self.case

    def follow_up(self, instructor: str, visit_id: uuid.UUID | None = None, *, after_minutes: float = 0) -> Transition:
        """This matter as one of a supervision visit's (what dispatch applies per matter)."""
        visit = visit_id or uuid.uuid4()
        return self.send(
            FollowUp(
                matter_id=self.id,
                message_id=uuid.uuid5(visit, f"follow_up:{self.id}"),
                visit_id=visit,
                town_id=self.reported.town_id,
                grid_id=self.reported.grid_id,
                instructor_id=instructor,
                visited_at=T0 + timedelta(minutes=self.minutes + after_minutes),
            ),
            after_minutes=after_minutes,
        )

    def of(self, event_type: str) -> list[Any]:
        return [e for e in self.events if e.event_type == event_type]
