"""Console credentials: the grid tokens' scheme (HS256 JWT over ``GW_TOKEN_SECRET``, verified
against the current and then ``GW_TOKEN_SECRETS_PREVIOUS`` secrets) with ``kind: console``.

Claims: ``kind``, ``role`` and ``sub`` — ``department`` and its id, ``grid`` and the grid id (with
``staff``, the grid staff member who acts: the grid leader by default), or ``supervisor`` and the
instructor's staff id — ``town_id`` (its scope), ``iat`` and optionally ``exp``. Another kind
(a grid token, an Open311 key) never signs in here, and a console credential is refused by
intake (it checks ``kind`` too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import jwt

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pydantic import SecretStr

ALGORITHM = "HS256"
KIND = "console"
Role = Literal["department", "grid", "supervisor"]
ROLES: tuple[Role, ...] = ("department", "grid", "supervisor")
GRID_TIERS = ("micro_grid", "grid_member", "grid_leader")
RUNNING = ("dispatched", "accepted", "returned")


class CredentialError(Exception):
    """Missing, malformed, expired, of another kind, or not signed by a known secret."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is signed in: a department (``subject`` = its id), a grid (``subject`` = the grid id,
    ``staff_id`` = who acts for it) or a supervisor (``subject`` = the instructor's staff id)."""

    role: Role
    subject: str
    town_id: str
    staff_id: str | None = None

    @property
    def actor_id(self) -> str:
        """Who dispatch sees sending the commands (``actor_id``)."""
        return self.staff_id or self.subject

    def may_see(self, matter: dict[str, Any]) -> bool:
        """A department sees the matters it was ever given (lead or supporting, any round); a
        grid the matters of its grid; a supervisor the matters of its town."""
        if self.role == "grid":
            return matter.get("grid_id") == self.subject
        if self.role == "supervisor":
            return matter.get("town_id") == self.town_id
        return self.subject in (matter.get("departments") or []) or self.may_act_on(matter)

    def may_follow_up(self, matter: dict[str, Any]) -> bool:
        """Grid staff record the reporter's satisfaction (回访) with a resolved matter of their grid."""
        return self.role == "grid" and self.may_see(matter) and matter.get("state") == "resolved"

    def may_act_on(self, matter: dict[str, Any]) -> bool:
        """A department acts on a matter open for it now; a grid whistles up one of its matters
        still on a grid tier; a supervisor reroutes a running matter of its town."""
        if int(matter.get("round") or 0) < 1:
            return False  # not dispatched yet: no round to act on
        if self.role == "grid":
            return self.may_see(matter) and matter.get("tier") in GRID_TIERS and matter.get("state") in RUNNING
        if self.role == "supervisor":
            return self.may_see(matter) and matter.get("state") in RUNNING
        return self.subject in (matter.get("open_departments") or [])


def issue_credential(
    secret: SecretStr,
    *,
    department_id: str,
    town_id: str,
    valid_for: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    """A department's credential."""
    return _issue(secret, "department", department_id, town_id, valid_for=valid_for, now=now)


def issue_grid_credential(
    secret: SecretStr,
    *,
    grid_id: str,
    town_id: str,
    staff_id: str,
    valid_for: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    """A grid's credential: ``staff_id`` (of that grid) is who reports and whistles."""
    return _issue(secret, "grid", grid_id, town_id, {"staff": staff_id}, valid_for=valid_for, now=now)


def issue_supervisor_credential(
    secret: SecretStr,
    *,
    supervisor_id: str,
    town_id: str,
    valid_for: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    """A supervisor's (grid instructor's) credential for its town."""
    return _issue(secret, "supervisor", supervisor_id, town_id, valid_for=valid_for, now=now)


def _issue(
    secret: SecretStr,
    role: Role,
    subject: str,
    town_id: str,
    extra: dict[str, Any] | None = None,
    *,
    valid_for: timedelta | None,
    now: datetime | None,
) -> str:
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "kind": KIND,
        "role": role,
        "sub": subject,
        "town_id": town_id,
        "iat": int(issued.timestamp()),
        **(extra or {}),
    }
    if valid_for is not None:
        claims["exp"] = int((issued + valid_for).timestamp())
    return jwt.encode(claims, secret.get_secret_value(), algorithm=ALGORITHM)


def verify_credential(credential: str, secrets: Iterable[SecretStr]) -> Principal:
    for secret in secrets:
        try:
            claims = jwt.decode(
                credential.strip(),
                secret.get_secret_value(),
                algorithms=[ALGORITHM],
                options={"require": ["iat", "kind"]},
            )
        except jwt.InvalidSignatureError:
            continue  # maybe signed with a previous secret
        except jwt.PyJWTError as error:
            raise CredentialError(type(error).__name__) from None
        role = claims.get("role")
        if claims.get("kind") != KIND or role not in ROLES:
            raise CredentialError("not a console credential")
        subject, town_id, staff_id = claims.get("sub"), claims.get("town_id"), claims.get("staff")
        if not isinstance(subject, str) or not isinstance(town_id, str):
            raise CredentialError("malformed claims")
        if role == "grid" and not isinstance(staff_id, str):
            raise CredentialError("a grid credential names its staff member")
        return Principal(role=role, subject=subject, town_id=town_id, staff_id=staff_id if role == "grid" else None)
    raise CredentialError("signature not valid for any accepted secret")
