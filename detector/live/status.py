"""What live mode says about its cameras: the status each camera posts to the service through the spool
(``POST /api/v1/cameras/<id>/status``, at every online/offline transition and every ``STATUS_INTERVAL_S``),
and the health endpoint (``GET /healthz``) with a ``CameraSnapshot`` of every camera."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detector.live.spool import Outgoing
from zones.errors import InputError

if TYPE_CHECKING:
    from detector.live.camera import CameraRuntime
    from detector.live.runner import LiveRunner

log = logging.getLogger("streetwatch.live")

STATUS_INTERVAL_S = 30.0
STATUS_LINE_INTERVAL_S = 60.0


def status_path(camera_id: str) -> str:
    return f"/api/v1/cameras/{camera_id}/status"


@dataclass
class CameraSnapshot:
    """What the health endpoint and the status pushes report about a camera."""

    id: str
    source: str
    status: str
    last_frame_at: str | None
    frames_dropped: int
    frames_analysed: int
    analysis_fps: float
    reconnects: int
    open_incidents: int
    last_error: str | None
    config_version: int | None = None
    frames_inferred: int | None = None
    """Of the frames analysed, those the model looked at (the rest reused its last detections)."""


def status_outgoing(camera: CameraRuntime) -> Outgoing:
    body = json.dumps(camera.status_body(), separators=(",", ":"))
    return Outgoing(kind="status", key=f"status:{camera.id}", path=status_path(camera.id), body=body)


def start_health_server(runner: LiveRunner, host: str, port: int) -> Any:
    """``GET /healthz`` (and ``/``): JSON with every camera's status and the spool's backlog."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/", "/healthz"):
                self.send_error(404)
                return
            health = runner.health()
            online = all(c["status"] == "online" for c in health.get("cameras", []))
            body = json.dumps({"ok": online, **health}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # polled often; not worth a log line each

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as error:
        raise InputError(f"--health-port {port}: cannot listen on {host}:{port} ({error.strerror})") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info("health.listening url=http://%s:%d/healthz", host, server.server_address[1])
    return server
