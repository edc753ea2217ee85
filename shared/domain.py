"""Domain vocabulary (DESIGN §2): the words every service speaks."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    PUBLIC_OPINION = "public_opinion"
    DISPUTE = "dispute"
    SAFETY_HAZARD = "safety_hazard"
    POLICY_PUBLICITY = "policy_publicity"
    SERVICE_PROXY = "service_proxy"
    LIVING_ENVIRONMENT = "living_environment"
    OTHER = "other"


class Severity(StrEnum):
    MINOR = "minor"  # 小事: micro-grid member
    MAJOR = "major"  # 大事: grid member
    HARD = "hard"  # 难事: grid leader
    URGENT = "urgent"  # emergency: straight to departments


class Tier(StrEnum):
    MICRO_GRID = "micro_grid"
    GRID_MEMBER = "grid_member"
    GRID_LEADER = "grid_leader"
    DEPARTMENT = "department"
    SUPERVISION = "supervision"

    @property
    def is_grid_tier(self) -> bool:
        return self in (Tier.MICRO_GRID, Tier.GRID_MEMBER, Tier.GRID_LEADER)


class MatterState(StrEnum):
    REPORTED = "reported"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    RETURNED = "returned"  # waiting in supervision for a reroute
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    P1 = "p1"  # urgent
    P2 = "p2"
    P3 = "p3"


class Channel(StrEnum):
    """How a report entered the system."""

    APP = "app"  # grid staff app, POST /v1/reports
    OPEN311 = "open311"
    AMQP = "amqp"  # machine sources on intake.reports


class ReporterRole(StrEnum):
    MICRO_GRID_MEMBER = "micro_grid_member"
    GRID_MEMBER = "grid_member"
    GRID_LEADER = "grid_leader"
    INSTRUCTOR = "instructor"
    CITIZEN = "citizen"
    SENSOR = "sensor"
    SYSTEM = "system"
