"""Health probes that work the same for components we run and for external ones.

The client libraries are imported inside the probes: ``stack up`` with everything running
should not pay their import time.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import TYPE_CHECKING

from tools.stack.model import Health, parse_epmd_names

if TYPE_CHECKING:
    from pamqp import frame

    from tools.stack.model import AmqpTarget


class _AmqpConversation:
    """Just enough AMQP 0-9-1 to log in, open the vhost and close politely."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def send(self, value: frame.FrameTypes) -> None:
        from pamqp import frame

        self._sock.sendall(frame.marshal(value, 0))

    def receive(self) -> frame.FrameTypes:
        from pamqp import frame

        while True:
            if len(self._buffer) >= 7:
                (size,) = struct.unpack(">I", self._buffer[3:7])
                if len(self._buffer) >= 8 + size:
                    consumed, _, value = frame.unmarshal(self._buffer)
                    self._buffer = self._buffer[consumed:]
                    return value
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self._buffer += chunk


def amqp_health(target: AmqpTarget, timeout: float = 2.0) -> Health:
    """Log in with the configured URL's credentials and open its vhost."""
    from pamqp import commands
    from pamqp.exceptions import UnmarshalingException
    from pamqp.header import ProtocolHeader

    try:
        with socket.create_connection((target.host, target.port), timeout=timeout) as raw:
            sock: socket.socket = raw
            if target.tls:
                sock = ssl.create_default_context().wrap_socket(raw, server_hostname=target.host)
            talk = _AmqpConversation(sock)
            sock.sendall(ProtocolHeader().marshal())
            start = talk.receive()
            if not isinstance(start, commands.Connection.Start):
                return Health(False, "not an AMQP 0-9-1 broker")
            props = start.server_properties or {}
            product = f"{props.get('product', 'broker')!s} {props.get('version', '')!s}".strip()
            talk.send(
                commands.Connection.StartOk(
                    client_properties={
                        "product": "gridwhistle stack",
                        "capabilities": {"authentication_failure_close": True},
                    },
                    response=f"\0{target.username}\0{target.password}",
                )
            )
            tune = talk.receive()
            if isinstance(tune, commands.Connection.Close):
                return Health(False, f"{product}: {tune.reply_text}")
            if not isinstance(tune, commands.Connection.Tune):
                return Health(False, f"{product}: unexpected {type(tune).__name__} after login")
            talk.send(commands.Connection.TuneOk(tune.channel_max, tune.frame_max, 0))
            talk.send(commands.Connection.Open(virtual_host=target.vhost))
            opened = talk.receive()
            if isinstance(opened, commands.Connection.Close):
                return Health(False, f"{product}: {opened.reply_text}")
            talk.send(commands.Connection.Close(200, "status check", 0, 0))
            talk.receive()
            return Health(True, product)
    except (OSError, ConnectionError) as exc:
        return Health(False, _os_detail(exc))
    except (UnmarshalingException, ValueError, TypeError, struct.error) as exc:
        return Health(False, f"protocol error: {exc}")


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
    if isinstance(exc, ConnectionRefusedError) or "Connection refused" in str(exc):
        return "connection refused"
    if isinstance(exc, TimeoutError) or "timed out" in str(exc).lower():
        return "timed out"
    return str(exc) or type(exc).__name__
