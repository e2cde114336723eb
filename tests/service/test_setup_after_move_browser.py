"""After a real move, in real Chromium (issue #26): the setup page draws the camera's config zones where they were
drawn, over the newest snapshot (the moved view), and says that the view moved and the zones need re-drawing;
the operator drags them onto the new view and saves version 2; the notice goes once the camera reports
``online`` again (as the runner does when it has applied that version and learnt the view).

The snapshots are a frame of ``sample_videos/street_day.mp4`` (A) and the same frame shifted by 8 % of its
width (B); which one the page shows is read back from its ``<img>`` through a canvas."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from tests.detector import view_clips
from tests.service.helpers import LiveServer
from tests.service.test_setup_browser import browser, chromium, live, login, press, severe_logs, shots

__all__ = ["browser", "chromium", "live", "shots"]

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "sample_videos" / "street_day.mp4"
CAMERA = "cam-jfdl-01"
WIDTH, HEIGHT = 960, 540
SHIFT = 0.08
ZONE = [[0.10, 0.62], [0.50, 0.62], [0.55, 0.95], [0.05, 0.95]]
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone(timedelta(hours=8)))
GRID = (9, 16)  # rows, columns of the blocks whose mean brightness identifies a picture (60 px squares)


def camera_config(polygon: list[list[float]]) -> dict[str, Any]:
    return {
        "id": CAMERA,
        "name": "解放东路 1 号",
        "source": "rtsp://cam.example/jfdl-01",
        "timezone": "Asia/Shanghai",
        "location": {"lon": 118.7969, "lat": 32.0603},
        "grid": {"code": "320102001001", "team": "team-a"},
        "zones": [{"name": "人行道", "polygon": polygon, "relative": True, "categories": ["street_vending"]}],
        "frame_size": [WIDTH, HEIGHT],
    }


def frame_at(seconds: float) -> view_clips.Image:
    capture = cv2.VideoCapture(str(CLIP))
    capture.set(cv2.CAP_PROP_POS_MSEC, seconds * 1000)
    ok, image = capture.read()
    capture.release()
    assert ok and image.shape[:2] == (HEIGHT, WIDTH)
    return np.asarray(image, dtype=np.uint8)


def jpeg(image: view_clips.Image) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])  # as the runner encodes
    assert ok
    return encoded.tobytes()


def blocks(data: bytes) -> npt.NDArray[np.float64]:
    """Mean brightness ((R + G + B) / 3) of each block of the decoded JPEG."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).astype(np.float64).mean(axis=2)
    rows, cols = GRID
    return image.reshape(rows, HEIGHT // rows, cols, WIDTH // cols).mean(axis=(1, 3)).ravel()


def page_blocks(driver: Any) -> npt.NDArray[np.float64]:
    """The same figures of the picture the page's <img id=snapshot> shows (drawn onto a canvas)."""
    values = driver.execute_script(
        "const img = document.getElementById('snapshot'), [rows, cols] = arguments[0];"
        "if (!img.complete || !img.naturalWidth) return null;"
        "const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;"
        "const g = c.getContext('2d'); g.drawImage(img, 0, 0);"
        "const d = g.getImageData(0, 0, c.width, c.height).data, bw = c.width / cols, bh = c.height / rows;"
        "const out = new Array(rows * cols).fill(0);"
        "for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {"
        "  const i = (y * c.width + x) * 4;"
        "  out[Math.floor(y / bh) * cols + Math.floor(x / bw)] += (d[i] + d[i + 1] + d[i + 2]) / 3; }"
        "return out.map((v) => v / (bw * bh));",
        list(GRID),
    )  # fmt: skip
    assert values is not None, "no snapshot shown"
    return np.asarray(values, dtype=np.float64)


def shows(driver: Any, picture: bytes, other: bytes) -> bool:
    """Whether the page shows ``picture`` (and not ``other``): block by block, within JPEG decoders' rounding."""
    seen = page_blocks(driver)
    return bool(np.abs(seen - blocks(picture)).mean() < 1.0 < np.abs(seen - blocks(other)).mean())


def zone_outline(driver: Any) -> list[float]:
    """The zone's outline on the snapshot, as fractions of its width and height (x0, y0, x1, y1, …)."""
    points = driver.execute_script(
        "return document.querySelector('#overlay polygon.zone').getAttribute('points')"
        ".split(' ').map((p) => p.split(',').map(Number));"
    )
    return [v for x, y in points for v in (x / WIDTH, y / HEIGHT)]


def flat(polygon: list[list[float]]) -> list[float]:
    return [v for point in polygon for v in point]


def report(live: LiveServer, status: str) -> None:
    with live.client("camera") as camera:
        response = camera.post(f"/api/v1/cameras/{CAMERA}/status", json={"status": status, "last_error": None})
    assert response.status_code == 200, response.text


def upload(live: LiveServer, picture: bytes, captured_at: datetime) -> None:
    with live.client("camera") as camera:
        response = camera.put(
            f"/api/v1/cameras/{CAMERA}/snapshot",
            params={"captured_at": captured_at.isoformat()},
            content=picture,
            headers={"content-type": "image/jpeg"},
        )
    assert response.status_code == 200, response.text


def drag(driver: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag on the snapshot from ``start`` to ``end`` (snapshot pixels), in small steps as a hand does."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    box = driver.execute_script(
        "const o = document.getElementById('overlay'); o.scrollIntoView({block: 'center'});"
        "const r = o.getBoundingClientRect(); return [r.left, r.top, r.width, r.height];"
    )

    def at(x: float, y: float) -> tuple[int, int]:
        return round(box[0] + x * box[2] / WIDTH), round(box[1] + y * box[3] / HEIGHT)

    builder = ActionBuilder(driver)
    builder.pointer_action.move_to_location(*at(*start)).pointer_down()
    for step in range(1, 6):
        f = step / 5
        builder.pointer_action.move_to_location(*at(*(a + (b - a) * f for a, b in zip(start, end, strict=True))))
    builder.pointer_action.pointer_up()
    builder.perform()


def notice(driver: Any) -> tuple[bool, str, str]:
    """(shown, status it is about, text) of the page's view notice."""
    shown, status, text = driver.execute_script(
        "const n = document.getElementById('view-notice');"
        "return [!n.hidden && n.getBoundingClientRect().height > 0, n.dataset.status, n.textContent];"
    )
    return bool(shown), str(status), str(text)


def open_setup(driver: Any, live: LiveServer) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(live.url + f"/setup/cameras/{CAMERA}")
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))


@pytest.mark.browser
@pytest.mark.skipif(not CLIP.exists(), reason=f"{CLIP} missing")
def test_after_a_move_the_old_zones_show_over_the_new_view_until_redrawn(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    frame = frame_at(20.0)
    before, after = jpeg(frame), jpeg(view_clips.shift(SHIFT)(frame))
    with live.client("operator") as operator:
        assert operator.put(f"/api/v1/cameras/{CAMERA}/config", json=camera_config(ZONE)).status_code == 200
    report(live, "online")
    upload(live, before, T0)

    # ---- the camera as set up: snapshot A, the zone where it was drawn, no notice
    login(browser, live, "operator")
    wait.until(EC.url_to_be(live.url + "/"))
    open_setup(browser, live)
    assert shows(browser, before, after)
    assert zone_outline(browser) == pytest.approx(flat(ZONE), abs=1e-3)
    assert notice(browser)[0] is False

    # ---- the view moves: the runner reports it (the open page learns it from the event stream) ...
    report(live, "view_moved")
    wait.until(lambda d: notice(d)[0])
    assert notice(browser)[1] == "view_moved"
    # ... and uploads the moved view at once; the operator opens the page on it
    upload(live, after, T0 + timedelta(seconds=82))
    open_setup(browser, live)
    shown, status, text = notice(browser)
    assert shown and status == "view_moved", text
    assert "view moved since these zones were drawn" in text and "re-draw them" in text
    assert shows(browser, after, before), "the newest snapshot, the moved view"
    assert zone_outline(browser) == pytest.approx(flat(ZONE), abs=1e-3), "the config's zones, where they were drawn"
    browser.save_screenshot(str(shots / "setup-after-move.png"))

    # ---- the operator drags each corner onto the new view (8 % to the right) and saves version 2
    press(browser, browser.find_element(By.CSS_SELECTOR, "#zones .item[data-index='0'] button.small-button"))
    for x, y in ZONE:
        drag(browser, (x * WIDTH, y * HEIGHT), ((x + SHIFT) * WIDTH, y * HEIGHT))
    moved = [[x + SHIFT, y] for x, y in ZONE]
    assert zone_outline(browser) == pytest.approx(flat(moved), abs=2.5 / WIDTH)
    press(browser, browser.find_element(By.ID, "save"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "save-status"), "已保存 Saved · 版本 version 2"))
    with live.client("operator") as operator:
        stored = operator.get(f"/api/v1/cameras/{CAMERA}/config").json()
    assert stored["version"] == 2
    assert flat(stored["config"]["zones"][0]["polygon"]) == pytest.approx(flat(moved), abs=2.5 / WIDTH)
    shown, status, text = notice(browser)
    assert shown and "Version 2 saved" in text, "until the camera has applied it, the notice stays"

    # ---- the runner applies version 2, learns the view as its reference and reports online: the notice goes
    report(live, "online")
    wait.until(lambda d: not notice(d)[0])
    open_setup(browser, live)
    assert notice(browser)[0] is False
    assert shows(browser, after, before)
    assert zone_outline(browser) == pytest.approx(flat(moved), abs=2.5 / WIDTH), "the re-drawn zones on the new view"
    assert severe_logs(browser) == []
