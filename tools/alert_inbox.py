"""The alert inbox: Alertmanager's webhook receiver for the local stack and the tests.

    python tools/alert_inbox.py --port 9095 --log .state/alerts/inbox.jsonl

``POST /alerts/<receiver>`` takes Alertmanager's webhook payload (version 4), appends one JSON
line per alert to the log (receiver, status, labels, annotations, times) and prints a line a
person can read, runbook link included. ``GET /alerts`` answers the alerts received so far
(newest last, at most ``KEEP``), ``GET /healthz`` answers ``ok``.

Standard library only, run as a script: the stack starts it beside Alertmanager without the
project's virtualenv imports, and it starts in well under a second. In production the same
routes go to e-mail / IM receivers instead (deploy/alertmanager/alertmanager.production.yml).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

KEEP = 1000
"""Alerts kept in memory for ``GET /alerts`` (the log file keeps everything)."""
MAX_BODY = 4 * 1024 * 1024


def alert_records(receiver: str, payload: dict[str, Any], received_at: str) -> list[dict[str, Any]]:
    """One flat record per alert of a webhook payload."""
    return [
        {
            "received_at": received_at,
            "receiver": receiver,
            "group_key": payload.get("groupKey", ""),
            "status": alert.get("status", payload.get("status", "")),
            "labels": alert.get("labels", {}),
            "annotations": alert.get("annotations", {}),
            "starts_at": alert.get("startsAt", ""),
            "ends_at": alert.get("endsAt", ""),
        }
        for alert in payload.get("alerts", [])
    ]


def describe(record: dict[str, Any]) -> str:
    """``[firing] Alert town=… department=… — summary — runbook: …`` for the terminal."""
    labels = record["labels"]
    where = " ".join(f"{k}={labels[k]}" for k in ("town", "department", "service", "queue") if k in labels)
    annotations = record["annotations"]
    parts = [f"[{record['status']}] {labels.get('alertname', '?')} {where}".rstrip()]
    if annotations.get("summary"):
        parts.append(annotations["summary"])
    if annotations.get("runbook_url"):
        parts.append(f"runbook: {annotations['runbook_url']}")
    return f"{record['receiver']}: " + " — ".join(parts)


class Inbox:
    def __init__(self, log: Path | None) -> None:
        self.log = log
        self.recent: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.lock = threading.Lock()

    def take(self, receiver: str, payload: dict[str, Any]) -> int:
        records = alert_records(receiver, payload, datetime.now(UTC).isoformat())
        with self.lock:
            self.recent.extend(records)
            if self.log is not None:
                with self.log.open("a", encoding="utf-8") as out:
                    out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            for record in records:
                sys.stdout.write(describe(record) + "\n")
            sys.stdout.flush()
        return len(records)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.recent)


def make_handler(inbox: Inbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._answer(200, {"status": "ok"})
            elif self.path.split("?", 1)[0] == "/alerts":
                self._answer(200, inbox.snapshot())
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            receiver = self.path.removeprefix("/alerts").strip("/") or "default"
            if not self.path.startswith("/alerts"):
                self._answer(404, {"error": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self._answer(400, {"error": "body missing or too large"})
                return
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(400, {"error": "not JSON"})
                return
            self._answer(200, {"received": inbox.take(receiver, payload)})

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the alert lines are the log."""

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Alertmanager webhook receiver that records what arrives")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--log", type=Path, default=None, help="append one JSON line per alert here")
    args = parser.parse_args(argv)
    if args.log is not None:
        args.log.parent.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(Inbox(args.log)))
    sys.stdout.write(f"alert inbox listening on http://{args.host}:{args.port}/alerts\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
