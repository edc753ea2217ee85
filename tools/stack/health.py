"""Health probes that work the same for components we run and for external ones.

The client libraries are imported inside the probes: ``stack up`` with everything running
should not pay their import time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

from tools.stack.model import Health, parse_amqp_url, parse_epmd_names


class _QuietWhileProbing(logging.Filter):
    """aiormq logs every failed connect as an error; in a probe the failure is the answer."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.threads


_QUIET = _QuietWhileProbing()


def amqp_health(url: str, timeout: float = 2.0) -> Health:
    """Log in with the configured URL's credentials and open its vhost (an aio-pika connection)."""
    thread = threading.get_ident()
    logger = logging.getLogger("aiormq.connection")
    logger.addFilter(_QUIET)  # idempotent
    _QUIET.threads.add(thread)
    try:
        return asyncio.run(_amqp_login(url, timeout))
    finally:
        _QUIET.threads.discard(thread)


async def _amqp_login(url: str, connect_timeout: float) -> Health:
    import aio_pika
    from aiormq.exceptions import AMQPError

    try:
        connection = await aio_pika.connect(
            url, timeout=connect_timeout, client_properties={"product": "gridwhistle stack"}
        )
    except OSError as exc:  # refused, unreachable, timed out, login refused
        return Health(False, _os_detail(exc))
    except AMQPError as exc:  # aiormq drops the broker's reply text when Connection.Open is refused
        if "Connection.OpenOk" in str(exc):
            return Health(False, f"vhost {parse_amqp_url(url).vhost!r} not found or not permitted")
        return Health(False, f"protocol error: {exc}")
    try:
        transport = connection.transport
        props = transport.connection.server_properties if transport is not None else {}
        return Health(True, f"{props.get('product', 'broker')!s} {props.get('version', '')!s}".strip())
    finally:
        await connection.close()


def mongo_health(url: str, timeout: float = 2.0) -> Health:
    """``ping`` the server; report its version (and that it is the local store, when it is)."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    ms = int(timeout * 1000)
    client: MongoClient[dict[str, object]] = MongoClient(
        url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms, appname="gridwhistle-stack"
    )
    try:
        client.admin.command("ping")
        info = client.admin.command("buildInfo")
    except PyMongoError as exc:
        return Health(False, str(exc).split(",", 1)[0].split(" (configured timeouts", 1)[0])
    finally:
        client.close()
    version = info.get("version", "?")
    if "secantus" in str(info.get("gitVersion", "")).lower() or "secantusVersion" in info:
        return Health(True, f"SecantusDB (MongoDB {version} wire)")
    return Health(True, f"MongoDB {version}")


def prometheus_health(base_url: str, timeout: float = 2.0) -> Health:
    """``GET /-/ready``; also count scrape targets that are up."""
    import httpx

    try:
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            ready = client.get("/-/ready")
            if ready.status_code != 200:
                return Health(False, f"/-/ready answered {ready.status_code}")
            detail = "ready"
            targets = client.get("/api/v1/targets", params={"state": "active"})
            if targets.status_code == 200:
                active = targets.json().get("data", {}).get("activeTargets", [])
                up = sum(1 for t in active if t.get("health") == "up")
                detail = f"ready, {up}/{len(active)} targets up"
            return Health(True, detail)
    except httpx.HTTPError as exc:
        return Health(False, _os_detail(exc))
    except ValueError as exc:
        return Health(False, f"bad answer: {exc}")


def alertmanager_health(base_url: str, timeout: float = 2.0) -> Health:
    """``GET /-/ready``; also count the alerts it holds (active, silenced, inhibited)."""
    import httpx

    try:
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            ready = client.get("/-/ready")
            if ready.status_code != 200:
                return Health(False, f"/-/ready answered {ready.status_code}")
            alerts = client.get("/api/v2/alerts")
            if alerts.status_code != 200:
                return Health(True, "ready")
            states = [a.get("status", {}).get("state", "?") for a in alerts.json()]
            return Health(True, f"ready, {states.count('active')} active alerts, {len(states)} in all")
    except httpx.HTTPError as exc:
        return Health(False, _os_detail(exc))
    except (ValueError, AttributeError) as exc:
        return Health(False, f"bad answer: {exc}")


def alert_inbox_health(base_url: str, timeout: float = 2.0) -> Health:
    """``GET /healthz`` of tools/alert_inbox.py, and how many alerts it received."""
    import httpx

    try:
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            if client.get("/healthz").status_code != 200:
                return Health(False, "not the alert inbox")
            received = client.get("/alerts").json()
            return Health(True, f"{len(received)} alerts received")
    except httpx.HTTPError as exc:
        return Health(False, _os_detail(exc))
    except ValueError as exc:
        return Health(False, f"bad answer: {exc}")


def _epmd_names_request(host: str, port: int, timeout: float) -> bytes:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"\x00\x01n")  # NAMES_REQ
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data


def epmd_health(host: str, port: int, timeout: float = 1.0) -> Health:
    """Ask epmd for its registered node names."""
    try:
        data = _epmd_names_request(host, port, timeout)
    except OSError as exc:
        return Health(False, _os_detail(exc))
    if len(data) < 4:
        return Health(False, "not an epmd")
    names = parse_epmd_names(data)
    return Health(True, f"nodes: {', '.join(names)}" if names else "no nodes registered")


def epmd_names(host: str, port: int, timeout: float = 1.0) -> list[str]:
    """Node names registered with epmd (empty when it does not answer)."""
    try:
        return parse_epmd_names(_epmd_names_request(host, port, timeout))
    except OSError:
        return []


def _os_detail(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError) or any(
        t in str(exc) for t in ("Connection refused", "Connect call failed")
    ):
        return "connection refused"
    if isinstance(exc, TimeoutError) or "timed out" in str(exc).lower():
        return "timed out"
    return str(exc) or type(exc).__name__
