"""Console credentials: the grid tokens' scheme (HS256 JWT over ``GW_TOKEN_SECRET``, verified
against the current and then ``GW_TOKEN_SECRETS_PREVIOUS`` secrets) with ``kind: console``.

Claims: ``kind``, ``role`` (``department``), ``sub`` (the department id), ``town_id`` (its scope),
``iat`` and optionally ``exp``. Another kind (a grid token, an Open311 key) never signs in here,
and a console credential is refused by intake (it checks ``kind`` too).
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
Role = Literal["department"]


class CredentialError(Exception):
    """Missing, malformed, expired, of another kind, or not signed by a known secret."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is signed in: a department (``subject`` = its id)."""

    role: Role
    subject: str
    town_id: str

    def may_see(self, matter: dict[str, Any]) -> bool:
        """A department sees the matters it was ever given (lead or supporting, any round)."""
        return self.subject in (matter.get("departments") or []) or self.may_act_on(matter)

    def may_act_on(self, matter: dict[str, Any]) -> bool:
        """It acts only on a matter that is open for it now."""
        return self.subject in (matter.get("open_departments") or [])


def issue_credential(
    secret: SecretStr,
    *,
    department_id: str,
    town_id: str,
    valid_for: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "kind": KIND,
        "role": "department",
        "sub": department_id,
        "town_id": town_id,
        "iat": int(issued.timestamp()),
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
        if claims.get("kind") != KIND or claims.get("role") != "department":
            raise CredentialError("not a console credential")
        subject, town_id = claims.get("sub"), claims.get("town_id")
        if not isinstance(subject, str) or not isinstance(town_id, str):
            raise CredentialError("malformed claims")
        return Principal(role="department", subject=subject, town_id=town_id)
    raise CredentialError("signature not valid for any accepted secret")
