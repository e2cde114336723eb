"""Live mode skips the model on frames where nothing in the zones changed (issue #16, item 4): the audit's
frame-skip gate (``detector/video/frame_skip.py``) on the live path. The same frames through a camera with
the gate and one without must raise the same records; the gated one asks the model less on a quiet street
and as often on a busy one; the first frame after a reconnect always goes to the model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from detector.live.analysers import AnalysisItem
from detector.live.camera import CameraRuntime
from detector.live.run import LiveRequest, _check_request
from detector.live.runner import LiveRunner
from detector.live.spool import Spool
from detector.video.capture import CapturedFrame
from detector.video.frame_skip import NO_REUSE, ReusePolicy
from tests.detector.test_live_restore import MODEL, T0
from zones.alert import AlertRecord
from zones.config import CameraConfig
from zones.detections import CLASS_IDS, Detections
from zones.errors import InputError

WIDTH, HEIGHT = 640, 360
STALL = (300, 170, 360, 230)  # inside the zone (x 192..480, y 108..252)
STEP_S = 2.0  # --analysis-fps 0.5
DURATION_S = 120.0

Image = npt.NDArray[np.uint8]


def _config() -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "cam-live-gate",
            "name": "live gate",
            "source": "rtsp://127.0.0.1:9/cam",
            "timezone": "Asia/Shanghai",
            "location": {"lon": 118.7969, "lat": 32.0603},
            "zones": [
                {
                    "name": "pavement",
                    "polygon": [[0.30, 0.30], [0.75, 0.30], [0.75, 0.70], [0.30, 0.70]],
                    "categories": ["street_vending"],
                    "dwell_s": 20,
                }
            ],
        }
    )


def _street() -> Image:
    rng = np.random.default_rng(7)
    return np.clip(rng.normal(110, 6, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)


def stall_out(t: float) -> bool:
    return 20.0 <= t < 70.0


def _frame(t: float, *, walker: bool, flicker: bool) -> Image:
    image = _street()
    if stall_out(t):
        x0, y0, x1, y1 = STALL
        image[y0:y1, x0:x1] = 230
    if walker:  # someone crossing the zone, somewhere else in every frame
        x = 200 + int(t * 7) % 260
        image[120:160, x : x + 16] = 30
    if flicker:  # a screen or the clock overlay outside the zones
        image[0:60, 0:120] = 40 if int(t / STEP_S) % 2 else 220
    return image


class _Model:
    """Sees the stall when it is there (bright pixels where it stands); counts the frames it is shown."""

    model = MODEL
    crop_model = None

    def __init__(self) -> None:
        self.times: list[float] = []

    def analyse(self, items: list[AnalysisItem]) -> list[Detections]:
        self.times += [item.t for item in items]
        out = []
        for item in items:
            x0, y0, x1, y1 = STALL
            if item.image[y0:y1, x0:x1].mean() > 200:
                out.append(Detections(np.array([STALL], float), np.array([0.9]), np.array([CLASS_IDS["stall"]])))
            else:
                out.append(Detections.empty())
        return out


def _run(
    tmp_path: Path, reuse: ReusePolicy, image_at: Callable[[float], Image], reconnect_at: float | None = None
) -> tuple[list[tuple[str, object, object, object]], CameraRuntime, list[float], list[tuple[float, list[list[float]]]]]:
    state = tmp_path / f"{'gated' if reuse.enabled else 'every-frame'}-{reconnect_at}"
    state.mkdir()
    clock = [0.0]
    camera = CameraRuntime(
        _config(), model=MODEL, state_dir=state, analysis_fps=1 / STEP_S, evidence=False, reuse=reuse,
        mono_clock=lambda: clock[0], wall_clock=lambda: T0 + timedelta(seconds=clock[0]),
    )  # fmt: skip
    model = _Model()
    fed: list[tuple[float, list[list[float]]]] = []
    process = camera.process

    def record_and_process(frame: CapturedFrame, t: float, detections: Detections) -> list[AlertRecord]:
        fed.append((t, detections.xyxy.tolist()))
        return process(frame, t, detections)

    camera.process = record_and_process  # type: ignore[method-assign]
    spool = Spool(state / "spool.sqlite3")
    runner = LiveRunner([camera], model, spool, state_dir=state, mono_clock=lambda: clock[0])
    records = []
    for index, seconds in enumerate(np.arange(0.0, DURATION_S, STEP_S)):
        clock[0] = float(seconds)
        if reconnect_at is not None and seconds == reconnect_at:
            camera.capture.stats.reconnects += 1
        camera.capture.stats.last_grab_mono = float(seconds)
        camera.queue.put(
            CapturedFrame(index, T0 + timedelta(seconds=float(seconds)), float(seconds), image_at(seconds))
        )
        records += runner.step()
    runner.shutdown(flush_timeout_s=0.0)
    spool.close()
    return [(r.event, r.started_at, r.alerted_at, r.ended_at) for r in records], camera, model.times, fed


FRAMES = int(DURATION_S / STEP_S)


@pytest.mark.parametrize(
    ("walker", "flicker", "most_inferred"),
    [
        pytest.param(False, False, 0.6, id="quiet-street"),
        pytest.param(False, True, 0.6, id="flicker-outside-the-zones"),
        pytest.param(True, False, 1.0, id="someone-in-the-zone-every-frame"),
    ],
)
def test_the_gate_changes_nothing_but_how_often_the_model_runs(
    tmp_path: Path, walker: bool, flicker: bool, most_inferred: float
) -> None:
    def image_at(t: float) -> Image:
        return _frame(t, walker=walker, flicker=flicker)

    every, plain, plain_times, plain_fed = _run(tmp_path, NO_REUSE, image_at)
    gated, camera, gated_times, gated_fed = _run(tmp_path, ReusePolicy(), image_at)
    assert [e for e, *_ in every] == ["violation.opened", "violation.closed"]
    assert gated_fed == plain_fed  # every frame got what the model would have said of it
    assert gated == every  # so the same incidents, with the same start, alert and end times
    assert len(plain_times) == plain.frames_inferred == FRAMES and plain.frames_reused == 0
    assert len(gated_times) == camera.frames_inferred and camera.frames_inferred + camera.frames_reused == FRAMES
    # Every frame where the stall came or went was shown to the model.
    assert {20.0, 70.0} <= set(gated_times)
    assert camera.frames_inferred <= most_inferred * FRAMES
    if most_inferred < 1.0:
        # The bound: a quarter of the 20 s dwell, so the model still runs at least every 5 s of frames.
        assert camera.frames_inferred >= FRAMES * STEP_S / 5.0


def test_the_first_frame_after_a_reconnect_goes_to_the_model(tmp_path: Path) -> None:
    def image_at(t: float) -> Image:
        return _frame(t, walker=False, flicker=False)

    _, _, quiet, _ = _run(tmp_path, ReusePolicy(), image_at)
    _, _, reconnected, _ = _run(tmp_path, ReusePolicy(), image_at, reconnect_at=92.0)
    assert 92.0 not in quiet, "the bound alone would not run the model at 92 s"
    assert 92.0 in reconnected


@pytest.mark.parametrize(
    ("change_threshold", "max_reuse_s", "message"),
    [(-1.0, None, "change_threshold"), (None, float("nan"), "max_reuse_s"), (300.0, None, "change_threshold")],
)
def test_bad_reuse_settings_are_refused_before_anything_starts(
    change_threshold: float | None, max_reuse_s: float | None, message: str
) -> None:
    request = LiveRequest(
        cameras=[Path("camera.yaml")], push="http://127.0.0.1:9", change_threshold=change_threshold,
        max_reuse_s=max_reuse_s,
    )  # fmt: skip
    with pytest.raises(InputError, match=message):
        _check_request(request)
