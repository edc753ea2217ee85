"""The console's read port: the stats API over HTTP (one ``httpx.AsyncClient`` per process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

Json = dict[str, Any]


class StatsUnavailableError(Exception):
    """The stats API did not answer, or answered with an error."""


class HttpStatsReader:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _get(self, path: str, params: dict[str, Any] | None = None, *, missing_ok: bool = False) -> Json | None:
        import httpx

        try:
            response = await self.http.get(path, params=params)
        except httpx.HTTPError as error:
            raise StatsUnavailableError(f"stats API: {type(error).__name__}") from None
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code != 200:
            raise StatsUnavailableError(f"stats API: HTTP {response.status_code} for {path}")
        body: Json = response.json()
        return body

    async def _must(self, path: str, params: dict[str, Any] | None = None) -> Json:
        body = await self._get(path, params)
        assert body is not None
        return body

    async def matter(self, matter_id: str) -> Json | None:
        return await self._get(f"/v1/matters/{matter_id}", missing_ok=True)

    async def open_matters(self, department_id: str, *, limit: int, after: str | None = None) -> Json:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        return await self._must(f"/v1/departments/{department_id}/open-matters", params)

    async def grid_open_matters(self, grid_id: str, *, limit: int, after: str | None = None) -> Json:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        return await self._must(f"/v1/grids/{grid_id}/open-matters", params)

    async def town_open_matters(self, town_id: str, *, only: str | None, limit: int, after: str | None = None) -> Json:
        params: dict[str, Any] = (
            {"limit": limit} | ({"after": after} if after else {}) | ({"filter": only} if only else {})
        )
        return await self._must(f"/v1/towns/{town_id}/open-matters", params)

    async def town_daily(self, town_id: str) -> Json:
        return await self._must(f"/v1/stats/towns/{town_id}/daily")

    async def town(self, town_id: str) -> Json:
        return await self._must(f"/v1/stats/towns/{town_id}")

    async def backlog(self, town_id: str) -> Json:
        return await self._must("/v1/backlog", {"town_id": town_id})
