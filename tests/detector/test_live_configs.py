"""Live cameras configured in the service: a new config version applied without a restart (open incidents
closed when the view changed, continued otherwise), the poller against a real service on loopback
(versions, camera ids, validation the service cannot do, an unreachable service, the cache for a start
without it), and the snapshot frames."""

from __future__ import annotations

import copy
import json
import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detector.live.analysers import AnalysisItem
from detector.live.camera import CameraRuntime
from detector.live.configs import DEFAULT_CONFIG_POLL_S, ConfigFeed, RemoteConfig
from detector.live.push import ServiceClient
from detector.live.runner import LiveRunner
from detector.live.snapshots import DEFAULT_SNAPSHOT_EVERY_S, SnapshotUploader
from detector.live.spool import Spool
from detector.video.capture import CapturedFrame
from tests.service.helpers import LiveServer, settings_for, start_server
from zones.alert import AlertRecord, ModelRef
from zones.config import CameraConfig
from zones.detections import Detections

T0 = datetime(2026, 11, 27, 1, 0, 0, tzinfo=UTC)
MODEL = ModelRef(name="test", sha256="")
STALL = (40.0, 60.0, 80.0, 100.0)
WHOLE = [[0, 0], [1, 0], [1, 1], [0, 1]]

BASE: dict[str, Any] = {
    "id": "cam-a",
    "name": "A",
    "source": "rtsp://127.0.0.1:9/cam",
    "timezone": "Asia/Shanghai",
    "location": {"lon": 118.7969, "lat": 32.0603},
    "grid": {"code": "320102001001", "team": "team-a"},
    "zones": [{"name": "walk", "polygon": WHOLE, "categories": ["street_vending"], "dwell_s": 5}],
}
# Four ground points for a 160x120 view, consistent with one homography (a square of about 20 m).
CALIBRATION = {
    "points": [
        {"px": [0, 120], "lon": 118.79680, "lat": 32.06020},
        {"px": [160, 120], "lon": 118.79700, "lat": 32.06020},
        {"px": [140, 60], "lon": 118.79697, "lat": 32.06038},
        {"px": [20, 60], "lon": 118.79683, "lat": 32.06038},
    ]
}


def camera_config(**changes: Any) -> CameraConfig:
    return CameraConfig.model_validate({**copy.deepcopy(BASE), **changes})


def stall(box: tuple[float, float, float, float] = STALL) -> Detections:
    return Detections(
        xyxy=np.array([box]), confidence=np.array([0.9]), class_id=np.array([0]), tracker_id=np.array([1])
    )


def feed(camera: CameraRuntime, start_s: float, end_s: float, detections: Detections | None) -> list[AlertRecord]:
    records: list[AlertRecord] = []
    image = np.zeros((120, 160, 3), np.uint8)
    for k in range(round((end_s - start_s) * 2)):
        at = start_s + k * 0.5
        frame = CapturedFrame(int(at * 10), T0 + timedelta(seconds=at), 0.0, image)
        t, early = camera.prepare(frame)
        records += early
        records += camera.process(frame, t, detections if detections is not None else Detections.empty())
    return records


def runtime(tmp_path: Path, config: CameraConfig | None = None) -> CameraRuntime:
    return CameraRuntime(
        config or camera_config(), model=MODEL, state_dir=tmp_path, analysis_fps=2.0, evidence=False,
        wall_clock=lambda: T0,
    )  # fmt: skip


# (what changes in version 2, whether the open incident is closed at the change)
CHANGES: list[tuple[str, dict[str, Any], bool]] = [
    ("zone moved", {"zones": [{"name": "walk", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]],
                               "categories": ["street_vending"], "dwell_s": 5}]}, True),
    ("zone renamed", {"zones": [{"name": "kerb", "polygon": WHOLE, "categories": ["street_vending"], "dwell_s": 5}]},
     True),
    ("dwell changed", {"zones": [{"name": "walk", "polygon": WHOLE, "categories": ["street_vending"], "dwell_s": 9}]},
     True),
    ("exclude mask added", {"exclude": [{"polygon": [[0.9, 0], [1, 0], [1, 0.1], [0.9, 0.1]]}]}, True),
    ("max_gap_s changed", {"max_gap_s": 20}, True),
    ("frame_size set", {"frame_size": [160, 120]}, True),
    ("name changed", {"name": "A, north side"}, False),
    ("calibration added", {"calibration": CALIBRATION}, False),
    ("grid changed", {"grid": {"code": "320102001002", "team": "team-b"}}, False),
    ("view radius changed", {"view_radius_m": 20}, False),
]  # fmt: skip


@pytest.mark.parametrize(("what", "changes", "closes"), CHANGES, ids=[row[0] for row in CHANGES])
def test_a_new_config_version_applies_without_restart(
    tmp_path: Path, what: str, changes: dict[str, Any], closes: bool
) -> None:
    camera = runtime(tmp_path)
    [opened] = feed(camera, 0, 10, stall())
    assert opened.event == "violation.opened"
    changed = camera.reconfigure(camera_config(**changes), version=2)
    assert camera.config_version == 2 and camera.config.model_dump() == camera_config(**changes).model_dump()
    after = feed(camera, 10, 20, stall())
    gone = feed(camera, 20, 60, None)
    if closes:
        assert [(r.event, r.id) for r in changed] == [("violation.closed", opened.id)], what
        assert changed[0].ended_at == T0 + timedelta(seconds=9.5), "closed at the change (its last sighting)"
        # The stall is seen again under the new zones: a new incident, reported after its new dwell.
        [reopened] = after
        assert reopened.event == "violation.opened" and reopened.id != opened.id
        assert reopened.started_at == T0 + timedelta(seconds=10)
        assert [r.event for r in gone] == ["violation.closed"] and gone[0].id == reopened.id
    else:
        assert changed == [] and after == [], "the incident goes on, no second alert"
        [closed] = gone
        assert closed.id == opened.id and closed.event == "violation.closed"
        new = camera_config(**changes)
        assert closed.grid == new.grid
        if new.calibration is not None:
            assert closed.location.coordinates != opened.location.coordinates, "located with the new calibration"
            assert closed.location_error_m < opened.location_error_m
        else:
            assert closed.location_error_m == new.view_radius_m


def test_an_identical_version_changes_nothing(tmp_path: Path) -> None:
    camera = runtime(tmp_path)
    [opened] = feed(camera, 0, 10, stall())
    assert camera.reconfigure(camera_config(), version=2) == []
    assert feed(camera, 10, 20, stall()) == []
    assert [r.id for r in feed(camera, 20, 60, None)] == [opened.id]


BAD_CALIBRATION = {
    "points": [
        *CALIBRATION["points"],
        {"px": [80, 90], "lon": 118.79690, "lat": 32.06029},
        {"px": [80, 70], "lon": 118.79800, "lat": 32.06100},  # about 126 m from where the others place it
    ]
}


def test_a_version_refused_here_changes_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    camera = runtime(tmp_path)
    camera.config_version = 1
    [opened] = feed(camera, 0, 10, stall())
    pipeline = camera.pipeline
    moved = {"name": "kerb", "polygon": WHOLE, "categories": ["street_vending"], "dwell_s": 5}
    runner = LiveRunner([camera], StallAnalyser(), Spool(tmp_path / "spool.sqlite3"), state_dir=tmp_path,
                        config_feed=StaticFeed([RemoteConfig("cam-a", 2, camera_config(
                            zones=[moved], calibration=BAD_CALIBRATION))]))  # fmt: skip
    assert runner.apply_configs({}) == []
    assert "config.invalid camera=cam-a version=2" in caplog.text and "calibration.points[5]" in caplog.text
    assert camera.config_version == 1 and camera.config.zones[0].name == "walk" and camera.pipeline is pipeline
    assert feed(camera, 10, 20, stall()) == [], "the incident goes on under the previous version"
    assert [r.id for r in feed(camera, 20, 60, None)] == [opened.id]
    runner.spool.close()


def test_a_config_before_the_first_frame_is_simply_used(tmp_path: Path) -> None:
    camera = runtime(tmp_path)
    moved = {"name": "left", "polygon": [[0, 0], [0.2, 0], [0.2, 1], [0, 1]], "categories": ["street_vending"]}
    assert camera.reconfigure(camera_config(zones=[moved]), version=3) == []
    assert feed(camera, 0, 200, stall()) == [], "the stall is outside the new zone"


def test_a_new_source_restarts_the_capture(tmp_path: Path) -> None:
    camera = runtime(tmp_path)
    old_capture, old_queue = camera.capture, camera.queue
    old_queue.on_put = lambda: None
    camera.reconfigure(camera_config(source="rtsp://127.0.0.1:9/other"), version=2)
    assert camera.capture is not old_capture and camera.capture.source == "rtsp://127.0.0.1:9/other"
    assert camera.queue is not old_queue and camera.queue.on_put is old_queue.on_put
    assert camera.uri == "rtsp://127.0.0.1:9/other"


# ---- the runner applies what the feed delivers -----------------------------------------------------


class StaticFeed:
    def __init__(self, waiting: list[RemoteConfig] | None = None) -> None:
        self.waiting: list[RemoteConfig] = waiting or []

    def take(self) -> list[RemoteConfig]:
        taken, self.waiting = self.waiting, []
        return taken


class StallAnalyser:
    model = MODEL

    def analyse(self, items: list[AnalysisItem]) -> list[Detections]:
        return [stall() for _ in items]


class Mono:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Snapshots:
    def __init__(self) -> None:
        self.offered: list[tuple[str, bytes, datetime]] = []

    def offer(self, camera_id: str, jpeg: bytes, captured_at: datetime) -> None:
        self.offered.append((camera_id, jpeg, captured_at))


def test_runner_starts_new_cameras_reconfigures_others_and_uploads_snapshots(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    mono = Mono()
    feed_ = StaticFeed()
    snapshots = Snapshots()
    file_camera = runtime(tmp_path, camera_config(id="cam-file"))

    def new_camera(entry: RemoteConfig) -> CameraRuntime:
        camera = CameraRuntime(entry.config, model=MODEL, state_dir=tmp_path, analysis_fps=2.0, evidence=False,
                               mono_clock=mono, wall_clock=lambda: T0)  # fmt: skip
        camera.config_version = entry.version
        return camera

    runner = LiveRunner([file_camera], StallAnalyser(), spool, state_dir=tmp_path, mono_clock=mono,
                        config_feed=feed_, new_camera=new_camera, snapshots=snapshots, snapshot_every_s=4)  # fmt: skip
    image = np.full((120, 160, 3), 90, np.uint8)

    def run_for(start_s: float, seconds: float) -> None:
        for k in range(int(seconds * 2)):
            at = start_s + k * 0.5
            mono.now = at
            for camera in runner.cameras:
                camera.capture.stats.last_grab_mono = at
                camera.queue.put(CapturedFrame(k, T0 + timedelta(seconds=at), at, image))
            runner.step()

    feed_.waiting = [RemoteConfig("cam-a", 1, camera_config())]
    runner.apply_configs({})
    run_for(0, 10)
    assert [camera.id for camera in runner.cameras] == ["cam-file", "cam-a"]
    remote = runner.cameras[1]
    assert remote.config_version == 1
    alerts = [(e.key.split(":")[-1], json.loads(e.body)["camera_id"]) for e in spool.entries() if e.kind == "alert"]
    assert ("violation.opened", "cam-a") in alerts and ("violation.opened", "cam-file") in alerts

    caplog.set_level(logging.INFO, logger="streetwatch")
    renamed = {"name": "kerb", "polygon": WHOLE, "categories": ["street_vending"], "dwell_s": 5}
    feed_.waiting = [
        RemoteConfig("cam-a", 2, camera_config(zones=[renamed])),
        RemoteConfig("cam-file", 7, camera_config(id="cam-file", name="not from the file")),
    ]
    run_for(10, 10)
    assert remote.config_version == 2 and remote.config.zones[0].name == "kerb"
    assert file_camera.config.name == "A", "a --camera file wins over the service"
    assert "config.ignored camera=cam-file version=7" in caplog.text
    assert "config.applied camera=cam-a version=2 previous=1 closed_incidents=1" in caplog.text
    zones = [(json.loads(e.body)["zone"], e.key.split(":")[-1]) for e in spool.entries()
             if e.kind == "alert" and json.loads(e.body)["camera_id"] == "cam-a"]  # fmt: skip
    assert zones == [("walk", "violation.opened"), ("walk", "violation.closed"), ("kerb", "violation.opened")]
    saved = json.loads(spool.load_state("cam-a") or "{}")
    assert [incident["zone"] for incident in saved["engine"]["incidents"]] == ["kerb"]

    # Snapshots: each camera at its first frame, then every 4 s (monotonic), the clean frame as JPEG.
    per_camera = {cid: [at for c, _, at in snapshots.offered if c == cid] for cid in ("cam-file", "cam-a")}
    assert per_camera["cam-file"] == [T0 + timedelta(seconds=s) for s in (0, 4, 8, 12, 16)]
    assert per_camera["cam-a"] == [T0 + timedelta(seconds=s) for s in (0, 4, 8, 12, 16)]
    import cv2

    decoded = cv2.imdecode(np.frombuffer(snapshots.offered[0][1], np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (120, 160, 3) and abs(int(decoded.mean()) - 90) <= 2, "the frame, unannotated"
    spool.close()


def test_runner_refuses_a_config_whose_class_map_the_model_was_not_loaded_with(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    feed_ = StaticFeed()
    camera = runtime(tmp_path)
    camera.config_version = 1
    runner = LiveRunner([camera], StallAnalyser(), spool, state_dir=tmp_path, config_feed=feed_,
                        class_map=json.dumps(None))  # fmt: skip
    feed_.waiting = [RemoteConfig("cam-a", 2, camera_config(class_map={"vendor": "stall"}))]
    runner.apply_configs({})
    assert camera.config_version == 1 and camera.config.class_map is None
    assert "config.refused camera=cam-a version=2" in caplog.text
    spool.close()


# ---- the feed against a real service -------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = tmp_path_factory.mktemp("service") / "streetwatch.db"
    live = start_server(settings_for(f"sqlite:///{path}"))
    yield live
    live.stop()
    live.db.dispose()


def store(service: LiveServer, config: dict[str, Any]) -> int:
    with service.client("operator") as operator:
        answer = operator.put(f"/api/v1/cameras/{config['id']}/config", json=config)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["version"])


def remote(camera_id: str, **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(BASE), "id": camera_id, **changes}


def test_feed_delivers_new_versions_of_its_cameras_only(tmp_path: Path, service: LiveServer) -> None:
    store(service, remote("cam-f1"))
    store(service, remote("cam-f2"))
    every = ConfigFeed(ServiceClient(service.url, service.tokens["camera"]), cache_dir=tmp_path / "all")
    some = ConfigFeed(ServiceClient(service.url, service.tokens["camera"]), cache_dir=tmp_path / "some",
                      camera_ids=["cam-f2"])  # fmt: skip
    assert every.poll() and some.poll()
    assert {"cam-f1", "cam-f2"} <= {entry.camera_id for entry in every.take()}
    assert [(e.camera_id, e.version) for e in some.take()] == [("cam-f2", 1)]
    assert some.poll() and some.take() == [], "an unchanged version is not delivered again"
    store(service, remote("cam-f2", name="second"))
    store(service, remote("cam-f1", name="other"))
    assert some.poll()
    [update] = some.take()
    assert (update.camera_id, update.version, update.config.name) == ("cam-f2", 2, "second")
    cached = json.loads((tmp_path / "some" / "cam-f2.json").read_text())
    assert cached["version"] == 2 and cached["config"]["name"] == "second"


def test_feed_waits_for_a_camera_the_service_does_not_know_yet(
    tmp_path: Path, service: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    feed_ = ConfigFeed(ServiceClient(service.url, service.tokens["camera"]), cache_dir=tmp_path, camera_ids=["cam-f9"])
    assert feed_.poll() and feed_.take() == []
    assert feed_.poll()
    assert caplog.text.count("config.missing camera=cam-f9") == 1, "said once"
    store(service, remote("cam-f9"))
    assert feed_.poll() and [e.camera_id for e in feed_.take()] == ["cam-f9"]


def test_feed_keeps_the_previous_config_when_a_version_fails_validation_here(
    tmp_path: Path, service: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The service cannot check calibration points against each other (no OpenCV there); the runner does."""
    store(service, remote("cam-f3"))
    feed_ = ConfigFeed(ServiceClient(service.url, service.tokens["camera"]), cache_dir=tmp_path, camera_ids=["cam-f3"])
    assert feed_.poll() and [e.version for e in feed_.take()] == [1]
    assert store(service, remote("cam-f3", calibration=BAD_CALIBRATION)) == 2
    assert feed_.poll() and feed_.take() == []
    assert "config.invalid camera=cam-f3 version=2" in caplog.text and "calibration.points[5]" in caplog.text
    assert json.loads((tmp_path / "cam-f3.json").read_text())["version"] == 1, "the cache keeps the good one"
    caplog.clear()
    assert feed_.poll() and "config.invalid" not in caplog.text, "logged once, not at every poll"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_feed_backs_off_while_the_service_is_unreachable_and_starts_from_its_cache(
    tmp_path: Path, service: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    store(service, remote("cam-f4"))
    online = ConfigFeed(ServiceClient(service.url, service.tokens["camera"]), cache_dir=tmp_path, camera_ids=["cam-f4"])
    assert online.poll() and online.take()

    offline = ConfigFeed(ServiceClient(f"http://127.0.0.1:{_closed_port()}", "t"), cache_dir=tmp_path,
                         camera_ids=["cam-f4"], poll_s=30)  # fmt: skip
    delays = []
    for _ in range(7):
        assert not offline.poll()
        delays.append(offline.retry_in_s())
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert caplog.text.count("config.unreachable") == 1, "said once per outage"

    import threading

    stop = threading.Event()
    started = ConfigFeed(ServiceClient(f"http://127.0.0.1:{_closed_port()}", "t"), cache_dir=tmp_path)
    [cached] = started.first(stop, wait=True)
    assert (cached.camera_id, cached.version) == ("cam-f4", 1)
    assert "config.cached camera=cam-f4 version=1" in caplog.text
    stop.set()
    empty = ConfigFeed(ServiceClient(f"http://127.0.0.1:{_closed_port()}", "t"), cache_dir=tmp_path / "none")
    assert empty.first(stop, wait=True) == [], "stopped while waiting"
    assert empty.first(threading.Event(), wait=False) == [], "with --camera files: no wait"


@pytest.mark.parametrize(("role", "logged"), [("officer", "config.auth_failed"), (None, "config.auth_failed")])
def test_feed_says_when_its_token_may_not_read_configs(
    tmp_path: Path, service: LiveServer, caplog: pytest.LogCaptureFixture, role: str | None, logged: str
) -> None:
    token = service.tokens[role] if role else "sw_not-a-token"
    feed_ = ConfigFeed(ServiceClient(service.url, token), cache_dir=tmp_path)
    assert not feed_.poll()
    assert logged in caplog.text and "check --token" in caplog.text


def test_snapshot_uploader_sends_the_newest_frame_of_each_camera(service: LiveServer) -> None:
    uploader = SnapshotUploader(ServiceClient(service.url, service.tokens["camera"]), min_backoff_s=0.05)
    frames = {camera: b"\xff\xd8\xff\xe0" + camera.encode() + b"\xff\xd9" for camera in ("cam-s1", "cam-s2")}
    uploader.offer("cam-s1", b"\xff\xd8\xff\xe0 older \xff\xd9", T0)
    for camera, jpeg in frames.items():
        uploader.offer(camera, jpeg, T0 + timedelta(seconds=5))
    uploader.start()
    try:
        import time

        deadline = time.monotonic() + 20
        while uploader.uploaded < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        uploader.stop()
    assert uploader.uploaded == 2, uploader.last_error
    with service.client("operator") as operator:
        for camera, jpeg in frames.items():
            served = operator.get(f"/api/v1/cameras/{camera}/snapshot")
            assert served.content == jpeg, "a newer frame replaced the one waiting"
            assert datetime.fromisoformat(served.headers["x-captured-at"]) == T0 + timedelta(seconds=5)


def test_cli_defaults_are_the_live_defaults() -> None:
    import inspect

    from detector import cli

    parameters = inspect.signature(cli.run).parameters
    assert parameters["config_poll_s"].default == DEFAULT_CONFIG_POLL_S == 30
    assert parameters["snapshot_every_s"].default == DEFAULT_SNAPSHOT_EVERY_S == 300
