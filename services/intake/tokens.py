"""Bearer tokens for grid staff apps and Open311 api keys: HS256 JWTs over a configured secret.

Claims: ``town_id``, ``grid_id`` (absent for a town-wide Open311 key), ``kind`` (``grid`` or
``open311``), ``iat`` and optionally ``exp``. Tokens are verified against the current secret
and then against ``GW_TOKEN_SECRETS_PREVIOUS``, so a secret can be rotated without
invalidating the tokens already handed out (see the README).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import jwt
import typer

from services.intake.config import IntakeSettings
from shared.registry import UnknownEntity, load_registry

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pydantic import SecretStr

TokenKind = Literal["grid", "open311"]
ALGORITHM = "HS256"


class TokenError(Exception):
    """The token is missing, malformed, expired or not signed by a known secret."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    town_id: str
    grid_id: str | None
    kind: TokenKind

    def may_report_for(self, town_id: str, grid_id: str) -> bool:
        """A grid token covers its own grid; a town-wide Open311 key covers the town's grids."""
        if town_id != self.town_id:
            return False
        return self.grid_id is None or self.grid_id == grid_id


def issue_token(
    secret: SecretStr,
    *,
    town_id: str,
    grid_id: str | None,
    kind: TokenKind = "grid",
    valid_for: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    if kind == "grid" and grid_id is None:
        raise ValueError("a grid token needs a grid_id")
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {"town_id": town_id, "kind": kind, "iat": int(issued.timestamp())}
    if grid_id is not None:
        claims["grid_id"] = grid_id
    if valid_for is not None:
        claims["exp"] = int((issued + valid_for).timestamp())
    return jwt.encode(claims, secret.get_secret_value(), algorithm=ALGORITHM)


def verify_token(token: str, secrets: Iterable[SecretStr], *, kind: TokenKind) -> TokenClaims:
    """The token's claims if any accepted secret signed it and it is of ``kind``."""
    for secret in secrets:
        try:
            claims = jwt.decode(
                token,
                secret.get_secret_value(),
                algorithms=[ALGORITHM],
                options={"require": ["iat", "kind", "town_id"]},
            )
        except jwt.InvalidSignatureError:
            continue  # maybe signed with a previous secret
        except jwt.PyJWTError as error:
            raise TokenError(type(error).__name__) from None
        return _claims(claims, kind)
    raise TokenError("signature not valid for any accepted secret")


def _claims(raw: dict[str, Any], kind: TokenKind) -> TokenClaims:
    if raw.get("kind") != kind:
        raise TokenError(f"not a {kind} token")
    town_id, grid_id = raw.get("town_id"), raw.get("grid_id")
    if not isinstance(town_id, str) or not (grid_id is None or isinstance(grid_id, str)):
        raise TokenError("malformed claims")
    if kind == "grid" and grid_id is None:
        raise TokenError("a grid token without grid_id")
    return TokenClaims(town_id=town_id, grid_id=grid_id, kind=kind)


# ---------------------------------------------------------------- CLI: gridwhistle tokens

tokens_app = typer.Typer(help="Issue bearer tokens (grid staff apps) and Open311 api keys.", no_args_is_help=True)


@tokens_app.callback()
def tokens() -> None:
    """Issue bearer tokens (grid staff apps) and Open311 api keys."""


@tokens_app.command("issue")
def issue(
    grid: Annotated[str | None, typer.Option("--grid", help="Grid the token may report for")] = None,
    open311: Annotated[bool, typer.Option("--open311", help="Issue an Open311 api_key instead")] = False,
    town: Annotated[
        str | None, typer.Option("--town", help="Town (required for a town-wide Open311 key without --grid)")
    ] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Expire after N days (default: never)")] = None,
) -> None:
    """Print one token, signed with GW_TOKEN_SECRET."""
    settings = IntakeSettings()
    registry = load_registry(settings.registry_path)
    if grid is None and not (open311 and town):
        raise typer.BadParameter("--grid is required (or --open311 --town <town_id> for a town-wide key)")
    try:
        if grid is not None:
            grid_town = registry.grid(grid).town_id
            if town is not None and town != grid_town:
                raise typer.BadParameter(f"grid {grid!r} is in town {grid_town!r}, not {town!r}")
            town = grid_town
        elif town is not None:
            registry.town(town)
    except UnknownEntity as error:
        raise typer.BadParameter(str(error)) from None
    assert town is not None
    token = issue_token(
        settings.token_secret,
        town_id=town,
        grid_id=grid,
        kind="open311" if open311 else "grid",
        valid_for=timedelta(days=days) if days else None,
    )
    typer.echo(token)
