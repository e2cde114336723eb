"""Setting a camera up in the browser (issue 17): zones and calibration drawn on the camera's snapshot, the
ground preview on the map, save; the saved YAML passes ``streetwatch check`` and geolocates the calibration
pixels to their points. The pages' maps on a basemap from a tile server on loopback; the GCJ-02 shift.

Screenshots are compared with tests/service/golden/*.png (mean absolute pixel difference, after resizing to
the golden's size); ``STREETWATCH_UPDATE_GOLDEN=1`` rewrites them (and docs/setup.png). Other screenshots go
to $STREETWATCH_SCREENSHOTS (else the test's tmp dir)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyproj import CRS, Geod, Transformer

from tests.service.helpers import LiveServer, alert, ingest, settings_for, start_chromium, start_server
from tests.service.test_browser import png

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE_GOLDEN = os.environ.get("STREETWATCH_UPDATE_GOLDEN") == "1"
CAMERA = "cam-jfdl-01"
WIDTH, HEIGHT = 1280, 720
LON0, LAT0 = 118.7969, 32.0603
GEOD = Geod(ellps="WGS84")

# Where the operator clicks (snapshot pixels): four pavement corners of the zone, four ground points.
ZONE_CLICKS = [(160, 440), (1120, 440), (1240, 700), (40, 700)]
POINT_CLICKS = [(300, 420), (980, 420), (1180, 680), (100, 680)]
BOWTIE_CLICKS = [(200, 120), (500, 300), (500, 120), (200, 300)]


# ---- a camera that sees the ground ---------------------------------------------------------------------


@cache
def ground_of() -> Any:
    """Pixel -> (lon, lat) of a pinhole camera 8 m above the pavement at (LON0, LAT0), looking north-east
    (45°), 12° down, focal length 1000 px: the 'truth' the operator types lon/lat from."""
    tilt, heading, height, focal = math.radians(12.0), math.radians(45.0), 8.0, 1000.0
    forward = np.array([math.sin(heading) * math.cos(tilt), math.cos(heading) * math.cos(tilt), -math.sin(tilt)])
    right = np.array([math.cos(heading), -math.sin(heading), 0.0])
    rotation = np.stack([right, np.cross(forward, right), forward])
    inverse_k = np.linalg.inv(np.array([[focal, 0, WIDTH / 2], [0, focal, HEIGHT / 2], [0, 0, 1]]))
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={LAT0} +lon_0={LON0} +datum=WGS84 +units=m +no_defs")
    to_wgs84 = Transformer.from_crs(local, CRS.from_epsg(4326), always_xy=True)

    def lonlat(px: tuple[float, float]) -> tuple[float, float]:
        ray = rotation.T @ inverse_k @ np.array([px[0], px[1], 1.0])
        east, north, _ = np.array([0.0, 0.0, height]) + (-height / ray[2]) * ray
        lon, lat = to_wgs84.transform(east, north)
        return round(float(lon), 8), round(float(lat), 8)

    return lonlat


def stored_config(**overrides: Any) -> dict[str, Any]:
    """A calibrated camera with one zone, as the API stores it."""
    lonlat = ground_of()
    config: dict[str, Any] = {
        "id": CAMERA,
        "name": "解放东路 1 号",
        "source": "rtsp://cam.example/jfdl-01",
        "timezone": "Asia/Shanghai",
        "location": {"lon": LON0, "lat": LAT0},
        "calibration": {
            "points": [
                {"px": list(p), "lon": lonlat(p)[0], "lat": lonlat(p)[1]}
                for p in [*POINT_CLICKS, (640, 500), (420, 560)]
            ]
        },
        "grid": {"code": "320102001001", "team": "team-a"},
        "zones": [
            {
                "name": "解放东路人行道",
                "polygon": [[x / WIDTH, y / HEIGHT] for x, y in ZONE_CLICKS],
                "relative": True,
                "categories": ["street_vending"],
            }
        ],
        "frame_size": [WIDTH, HEIGHT],
    }
    config.update(overrides)
    return config


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


# ---- screenshots against golden images -----------------------------------------------------------------


def mean_difference(actual: Path, golden: Path) -> float:
    """Mean absolute difference (0..255, over all pixels and RGB channels) once ``actual`` is resized to
    the golden's size."""
    from PIL import Image

    with Image.open(golden) as want, Image.open(actual) as got:
        want_rgb = np.asarray(want.convert("RGB"), dtype=np.float64)
        got_rgb = np.asarray(got.convert("RGB").resize(want.size, Image.Resampling.BILINEAR), dtype=np.float64)
    return float(np.mean(np.abs(want_rgb - got_rgb)))


def check_golden(actual: Path, name: str, threshold: float, *, copy_to: Path | None = None) -> None:
    golden = GOLDEN / name
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        shutil.copy(actual, golden)
        if copy_to is not None:
            copy_to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(actual, copy_to)
        return
    assert golden.exists(), f"no golden {golden}: run with STREETWATCH_UPDATE_GOLDEN=1 to create it"
    difference = mean_difference(actual, golden)
    assert difference < threshold, f"{name}: mean pixel difference {difference:.2f} >= {threshold} (see {actual})"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("same", (0.0, 0.01)),  # identical
        ("resized", (0.0, 2.0)),  # the same picture at another size: resizing first makes it comparable
        ("one_block", (0.5, 6.0)),  # a small region changed
        ("inverted", (40.0, 256.0)),  # a different picture
    ],
)
def test_mean_difference(tmp_path: Path, change: str, expected: tuple[float, float]) -> None:
    from PIL import Image

    golden = tmp_path / "golden.png"
    golden.write_bytes(png(320, 180, (100, 60, 160, 120)))
    actual = tmp_path / "actual.png"
    with Image.open(golden) as image:
        picture = image.convert("RGB")
        if change == "resized":
            picture = picture.resize((640, 360), Image.Resampling.NEAREST)
        elif change == "one_block":
            picture.paste((0, 255, 0), (0, 0, 40, 40))
        elif change == "inverted":
            picture = Image.eval(picture, lambda v: 255 - v)
        picture.save(actual)
    low, high = expected
    assert low <= mean_difference(actual, golden) < high


# ---- API: who may set cameras up, what the preview computes -----------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(settings_for(f"sqlite:///{tmp_path_factory.mktemp('api') / 'sw.db'}"))
    yield server
    server.stop()
    server.db.dispose()


PREVIEW = {"config": stored_config(), "width": WIDTH, "height": HEIGHT}


@pytest.mark.parametrize(
    ("role", "method", "path", "body", "status"),
    [
        ("camera", "PUT", f"/api/v1/cameras/{CAMERA}/config", stored_config(), 403),
        ("officer", "PUT", f"/api/v1/cameras/{CAMERA}/config", stored_config(), 403),
        ("operator", "PUT", f"/api/v1/cameras/{CAMERA}/config", stored_config(), 200),
        ("camera", "POST", f"/api/v1/cameras/{CAMERA}/config/preview", PREVIEW, 403),
        ("officer", "POST", f"/api/v1/cameras/{CAMERA}/config/preview", PREVIEW, 403),
        ("operator", "POST", f"/api/v1/cameras/{CAMERA}/config/preview", PREVIEW, 200),
        ("supervisor", "POST", f"/api/v1/cameras/{CAMERA}/config/preview", PREVIEW, 200),
        ("camera", "GET", f"/setup/cameras/{CAMERA}", None, 403),
        ("officer", "GET", f"/setup/cameras/{CAMERA}", None, 403),
        ("admin", "GET", f"/setup/cameras/{CAMERA}", None, 200),
        ("camera", "GET", "/api/v1/cameras.geojson", None, 403),
        ("officer", "GET", "/api/v1/cameras.geojson", None, 200),
    ],
)
def test_who_may_set_a_camera_up(
    api: LiveServer, role: str, method: str, path: str, body: dict[str, Any] | None, status: int
) -> None:
    with api.client(role) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == status, response.text


def _moved(index: int, d_lon: float) -> dict[str, Any]:
    config = stored_config()
    config["calibration"]["points"][index]["lon"] += d_lon
    return config


@pytest.mark.parametrize(
    ("name", "config", "calibrated", "problem_fields", "max_reprojection_m"),
    [
        ("five consistent points", stored_config(), True, [], 0.01),
        ("three points", stored_config(calibration={"points": stored_config()["calibration"]["points"][:3]}),
         False, ["calibration.points"], None),
        ("a point 9 m off", _moved(4, 0.0001), False, ["calibration.points[4]"], None),
        ("self-intersecting zone", stored_config(zones=[{"name": "bad", "categories": ["street_vending"],
         "polygon": [[x / WIDTH, y / HEIGHT] for x, y in BOWTIE_CLICKS]}]), True, ["zones[0].polygon"], 0.01),
        ("no location yet", stored_config(location=None), False, ["location"], None),
    ],
)  # fmt: skip
def test_preview(
    api: LiveServer,
    name: str,
    config: dict[str, Any],
    calibrated: bool,
    problem_fields: list[str],
    max_reprojection_m: float | None,
) -> None:
    with api.client("operator") as client:
        response = client.post(
            f"/api/v1/cameras/{CAMERA}/config/preview", json={"config": config, "width": WIDTH, "height": HEIGHT}
        )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["calibrated"] is calibrated, preview["problems"]
    assert [p["field"] for p in preview["problems"]] == problem_fields
    if name == "a point 9 m off":
        errors = [p["reprojection_error_m"] for p in preview["points"]]
        assert max(e for e in errors if e is not None) > 2.0  # what max_reprojection_error_m refuses
    if not calibrated:
        assert all(z["outline"] is None for z in preview["zones"])
        return
    assert max_reprojection_m is not None
    assert all(p["reprojection_error_m"] < max_reprojection_m for p in preview["points"])
    assert abs(preview["camera"]["bearing_deg"] - 45.0) < 0.5  # the camera looks north-east
    assert preview["grid"] and preview["grid_step_m"] > 0
    for zone in preview["zones"]:
        if zone["name"] == "bad":
            assert zone["outline"] is None
            continue
        # The outline is where zones/geo.py puts the zone's corners: the truth of the camera model.
        for vertex, click in zip(zone["outline"], ZONE_CLICKS, strict=True):
            assert metres(tuple(vertex), ground_of()(click)) < 0.05
        assert 0 < zone["location_error_m"] <= zone["max_location_error_m"] < 50


def test_a_dead_geometry_worker_is_replaced(api: LiveServer) -> None:
    from service.api.routes import setup

    def preview() -> int:
        with api.client("operator") as client:
            return client.post(f"/api/v1/cameras/{CAMERA}/config/preview", json=PREVIEW).status_code

    assert preview() == 200
    workers = []
    while not setup._idle.empty():
        workers.append(setup._idle.get_nowait())
    assert workers
    for worker in workers:
        worker.process.kill()
        worker.process.wait()
        setup._idle.put(worker)  # dead, back in the pool: the next request must notice
    assert preview() == 200
    assert all(w.process.returncode is not None for w in workers)


def test_the_server_process_never_loads_opencv(tmp_path: Path) -> None:
    """The preview runs zones/geo.py (OpenCV) in a worker process: the server itself stays free of cv2."""
    code = (
        "import json, sys\n"
        "from fastapi.testclient import TestClient\n"
        "from service.core.config import Settings\n"
        "from service.main import create_app\n"
        "from service import crud\n"
        "from datetime import UTC, datetime\n"
        "app = create_app(Settings(database_url='sqlite:///' + sys.argv[1], relay_enabled=False))\n"
        "with app.state.db.writing() as s:\n"
        "    _, token = crud.create_token(s, role='operator', name='op', team=None, now=datetime.now(UTC))\n"
        "body = json.loads(sys.stdin.read())\n"
        "with TestClient(app) as client:\n"
        "    r = client.post('/api/v1/cameras/cam-jfdl-01/config/preview', json=body,\n"
        "                    headers={'Authorization': 'Bearer ' + token})\n"
        "print(r.status_code, r.json()['calibrated'], 'cv2' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "sw.db")],
        input=json.dumps(PREVIEW), capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "True", "False"]


@pytest.mark.parametrize(
    ("tile_url", "img_src"),
    [
        (None, "img-src 'self' data: blob:;"),
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "img-src 'self' data: blob: https://tile.openstreetmap.org;"),
        ("https://{s}.tile.example.org/{z}/{x}/{y}.png", "img-src 'self' data: blob: https://*.tile.example.org;"),
        ("https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}",
         "img-src 'self' data: blob: https://*.is.autonavi.com;"),
        ("http://127.0.0.1:8765/{z}/{x}/{y}.png", "img-src 'self' data: blob: http://127.0.0.1:8765;"),
    ],
)  # fmt: skip
def test_pages_allow_images_only_from_self_and_the_tile_host(
    tmp_path: Path, tile_url: str | None, img_src: str
) -> None:
    server = start_server(settings_for(f"sqlite:///{tmp_path / 'sw.db'}", tile_url=tile_url))
    try:
        with server.client("operator") as client:
            for page in ("/", f"/setup/cameras/{CAMERA}"):
                response = client.get(page)
                assert response.status_code == 200
                csp = response.headers["content-security-policy"]
                assert img_src in csp and "default-src 'self';" in csp and "script-src 'self';" in csp
                assert ('data-tile-url="' + (tile_url or "").replace("&", "&amp;") + '"') in response.text
    finally:
        server.stop()
        server.db.dispose()


@pytest.mark.parametrize(
    "tile_url",
    [
        "ftp://tile.example.org/{z}/{x}/{y}.png",  # not http(s)
        "https://tile.example.org/{z}/{x}.png",  # no {y}
        "https://tile.{s}.example.org/{z}/{x}/{y}.png",  # placeholder beyond the first label
        "https://tile.example.org/{z}/{x}/{y}.png; script-src *",  # CSP injection
        "https://user:pw@tile.example.org/{z}/{x}/{y}.png",  # credentials
    ],
)
def test_unusable_tile_urls_are_refused(tile_url: str) -> None:
    from pydantic import ValidationError

    from service.core.config import Settings

    with pytest.raises(ValidationError, match="tile"):
        Settings(tile_url=tile_url)


# ---- the browser ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    driver = start_chromium("--hide-scrollbars", "--force-device-scale-factor=1")
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    """The module's Chromium, on a blank page with an empty log (a page left open would poll a server that
    is gone and log the refused connections into the next test)."""
    chromium.get("about:blank")
    chromium.get_log("browser")
    chromium.set_window_size(1400, 1000)
    yield chromium
    chromium.get("about:blank")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(settings_for(f"sqlite:///{tmp_path / 'b.db'}"))
    yield server
    server.stop()
    server.db.dispose()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("STREETWATCH_SCREENSHOTS") or tmp_path / "screens")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def login(driver: Any, live: LiveServer, role: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(live.url + "/static/app.css")  # a script-free page of the site, so cookies can go
    driver.delete_all_cookies()
    driver.get(live.url + "/login")
    driver.find_element(By.ID, "token").send_keys(live.tokens[role])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def severe_logs(driver: Any, expected: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Browser errors (JS errors, CSP violations, failed requests) other than the expected refusals."""
    return [
        entry
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not any(text in entry["message"] for text in expected)
    ]


def settle(driver: Any) -> None:
    """No focus ring, caret or hover in a screenshot."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    builder = ActionBuilder(driver)
    builder.pointer_action.move_to_location(0, 0)
    builder.perform()


def press(driver: Any, element: Any) -> None:
    """Click a button in the middle of the screen (the sticky save bar covers the bottom edge)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


class Stage:
    """Clicks on the setup page's snapshot, in snapshot pixels."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def viewport(self, x: float, y: float) -> tuple[int, int]:
        r = self.driver.execute_script(
            "const o = document.getElementById('overlay'); o.scrollIntoView({block: 'center'});"
            "const r = o.getBoundingClientRect(); return [r.left, r.top, r.width, r.height];"
        )
        return round(r[0] + x * r[2] / WIDTH), round(r[1] + y * r[3] / HEIGHT)

    def click(self, x: float, y: float) -> None:
        self.click_viewport(*self.viewport(x, y))

    def click_viewport(self, x: float, y: float) -> None:
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        builder = ActionBuilder(self.driver)
        builder.pointer_action.move_to_location(round(x), round(y)).click()
        builder.perform()

    def double_click(self, x: float, y: float) -> None:
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        builder = ActionBuilder(self.driver)
        builder.pointer_action.move_to_location(*self.viewport(x, y)).double_click()
        builder.perform()

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        builder = ActionBuilder(self.driver)
        builder.pointer_action.move_to_location(*self.viewport(*start)).pointer_down()
        for step in range(1, 6):
            t = step / 5
            point = (start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
            builder.pointer_action.move_to_location(*self.viewport(*point))
        builder.pointer_action.pointer_up()
        builder.perform()


@pytest.mark.browser
def test_gcj02_transform_matches_published_pairs(browser: Any, live: LiveServer) -> None:
    """map.js's WGS84 -> GCJ-02 against published pairs (eviltransform's test table; coordtransform's README
    example), no shift outside China, and the inverse that clicks on a GCJ-02 basemap go through."""
    pairs = [
        # (WGS84 lon, lat) -> (GCJ-02 lon, lat)
        ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai (eviltransform)
        ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen (eviltransform)
        ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing (eviltransform)
        ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),  # Beijing (coordtransform)
        ((2.3522, 48.8566), (2.3522, 48.8566)),  # Paris: outside China, unchanged
        ((139.6917, 35.6895), (139.6917, 35.6895)),  # Tokyo: outside China, unchanged
    ]
    login(browser, live, "operator")
    browser.get(live.url + "/")
    results = browser.execute_script(
        "return arguments[0].map(([w]) => {"
        "  const g = SWMap.wgs84ToGcj02(w[0], w[1]); return [g, SWMap.gcj02ToWgs84(g[0], g[1])]; });",
        pairs,
    )
    for (wgs, gcj), (forward, back) in zip(pairs, results, strict=True):
        assert forward == pytest.approx(gcj, abs=1e-9), (wgs, forward, gcj)
        assert back == pytest.approx(wgs, abs=1e-8), (wgs, back)  # ~1 mm


@pytest.mark.browser
def test_operator_sets_a_camera_up(browser: Any, live: LiveServer, tmp_path: Path, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from zones.config import load_camera_config
    from zones.geo import Geolocator

    wait = WebDriverWait(browser, 30)
    browser.set_window_size(1400, 1000)
    with live.client("camera") as camera:
        response = camera.put(
            f"/api/v1/cameras/{CAMERA}/snapshot",
            content=png(WIDTH, HEIGHT, (560, 450, 720, 580)),
            headers={"content-type": "image/png"},
        )
        assert response.status_code == 200, response.text

    # ---- a new camera: the page opens on its snapshot, with no config yet
    login(browser, live, "operator")
    wait.until(EC.url_to_be(live.url + "/"))
    browser.get(live.url + f"/setup/cameras/{CAMERA}")
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    assert browser.execute_script("return document.getElementById('snapshot').naturalWidth") == WIDTH
    for name, value in (("name", "解放东路 1 号"), ("source", "rtsp://cam.example/jfdl-01"),
                        ("cam_lon", str(LON0)), ("cam_lat", str(LAT0)),
                        ("grid_code", "320102001001"), ("grid_team", "team-a")):  # fmt: skip
        browser.find_element(By.NAME, name).send_keys(value)

    # ---- a zone: four clicks on the pavement, Finish, then its name
    stage = Stage(browser)
    browser.find_element(By.ID, "add-zone").click()
    for x, y in ZONE_CLICKS:
        stage.click(x, y)
    browser.find_element(By.ID, "finish").click()
    name = wait.until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "#zones .item[data-index='0'] input[name=zone-name]"))
    )
    assert browser.switch_to.active_element == name  # ready to be named
    name.clear()
    name.send_keys("解放东路人行道")
    browser.find_element(By.CSS_SELECTOR, "#zones .item[data-index='0'] input[value=hanging_laundry]").click()

    # ---- four calibration points: the pixel on the snapshot, then lon/lat typed
    lonlat = ground_of()
    for i, (x, y) in enumerate(POINT_CLICKS):
        browser.find_element(By.ID, "add-point").click()
        stage.click(x, y)
        lon = wait.until(
            EC.presence_of_element_located((By.CSS_SELECTOR, f"#points tr[data-index='{i}'] input[name=lon]"))
        )
        assert browser.switch_to.active_element == lon  # after the pixel, its place
        lon.send_keys(str(lonlat((x, y))[0]))
        browser.find_element(By.CSS_SELECTOR, f"#points tr[data-index='{i}'] input[name=lat]").send_keys(
            str(lonlat((x, y))[1])
        )

    # ---- the live preview: calibrated, the zone on the map, the errors in the table
    wait.until(EC.text_to_be_present_in_element((By.ID, "preview-summary"), "已标定 Calibrated"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "preview-summary"), "朝向 view 45°"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#setup-map path.zone-area")))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#setup-map [data-camera]")))
    residuals = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#points td.residual")]
    assert residuals == ["0.00"] * 4  # four points: the homography passes through each
    assert "地面 on the ground" in browser.find_element(By.CSS_SELECTOR, "[data-zone-info='0']").text
    assert browser.find_elements(By.CSS_SELECTOR, "#overlay g.ground-grid polyline")  # metre grid on the snapshot
    settle(browser)
    browser.save_screenshot(str(shots / "setup-desktop.png"))
    check_golden(shots / "setup-desktop.png", "setup.png", 6.0, copy_to=ROOT / "docs" / "setup.png")

    # ---- save, then the YAML: `streetwatch check` accepts it, zones.geo places the pixels on the points
    browser.find_element(By.ID, "save").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "save-status"), "已保存 Saved · 版本 version 1"))
    with live.client("operator") as operator:
        response = operator.get(f"/api/v1/cameras/{CAMERA}/config.yaml")
    assert response.status_code == 200, response.text
    path = tmp_path / f"{CAMERA}.camera.yaml"
    path.write_text(response.text, encoding="utf-8")
    check = subprocess.run(
        [str(Path(sys.executable).with_name("streetwatch")), "check", str(path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert "is valid (解放东路人行道)" in check.stdout
    config = load_camera_config(path)
    assert config.frame_size == (WIDTH, HEIGHT) and config.grid is not None and config.grid.team == "team-a"
    assert config.calibration is not None and len(config.calibration.points) == 4
    geolocator = Geolocator.from_config(config, WIDTH, HEIGHT)
    assert geolocator.is_calibrated
    pixels = np.array([p.px for p in config.calibration.points])
    located, _ = geolocator.locate(pixels)
    for point, click, place in zip(config.calibration.points, POINT_CLICKS, located, strict=True):
        assert metres((point.lon, point.lat), lonlat(click)) < 1e-3  # what was typed
        assert metres((point.lon, point.lat), (float(place[0]), float(place[1]))) < 0.5
        assert abs(point.px[0] - click[0]) <= 2 and abs(point.px[1] - click[1]) <= 2  # where was clicked
    (zone,) = config.zones
    assert (zone.name, zone.relative, zone.categories) == (
        "解放东路人行道",
        True,
        ["street_vending", "hanging_laundry"],
    )
    for (x, y), click in zip(zone.polygon, ZONE_CLICKS, strict=True):
        assert abs(x * WIDTH - click[0]) <= 2 and abs(y * HEIGHT - click[1]) <= 2

    # ---- the mouse edits the outline: drag a vertex, click a midpoint to add one, double-click one away
    def outline(index: int) -> list[list[float]]:
        return browser.execute_script(
            "return [...document.querySelectorAll('#overlay polygon.zone')][arguments[0]].getAttribute('points')"
            ".split(' ').map((p) => p.split(',').map(Number));",
            index,
        )

    press(browser, browser.find_element(By.CSS_SELECTOR, "#zones .item[data-index='0'] button.small-button"))
    stage.drag(ZONE_CLICKS[0], (200, 470))
    assert all(abs(a - b) <= 2 for a, b in zip(outline(0)[0], (200, 470), strict=True)), outline(0)
    middle = ((ZONE_CLICKS[1][0] + ZONE_CLICKS[2][0]) / 2, (ZONE_CLICKS[1][1] + ZONE_CLICKS[2][1]) / 2)
    stage.click(*middle)
    assert len(outline(0)) == 5
    stage.double_click(*middle)
    assert len(outline(0)) == 4 and all(abs(a - b) <= 2 for a, b in zip(outline(0)[2], ZONE_CLICKS[2], strict=True))

    # ---- the camera's place picked with a click on the map
    press(browser, browser.find_element(By.ID, "pick-location"))
    box = browser.execute_script(
        "const m = document.getElementById('setup-map'); m.scrollIntoView({block: 'center'});"
        "const r = m.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2];"
    )
    stage.click_viewport(*box)
    centre = browser.execute_script(
        "const m = document.getElementById('setup-map').swMap.map; return SWMap.lonLatOf(m.getCenter());"
    )
    picked = (float(browser.find_element(By.NAME, "cam_lon").get_attribute("value")),
              float(browser.find_element(By.NAME, "cam_lat").get_attribute("value")))  # fmt: skip
    assert metres(picked, tuple(centre)) < 1.0  # within a pixel of the map at this zoom

    # ---- a self-intersecting polygon is refused, and the page says which field of which zone
    browser.find_element(By.ID, "add-zone").click()
    for x, y in BOWTIE_CLICKS:
        stage.click(x, y)
    browser.find_element(By.ID, "finish").click()
    browser.find_element(By.ID, "save").click()
    slot = wait.until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".field-error[data-error-for='zones.1.polygon'] span"))
    )
    assert "zones[1].polygon" in slot.text and "zone-2" in slot.text and "self-intersection" in slot.text, slot.text
    assert (
        browser.find_element(By.CSS_SELECTOR, "#zones .item[data-index='1']").get_attribute("class").split()[-1]
        == "invalid"
    )
    assert "zones[1].polygon" in browser.find_element(By.ID, "errors").text
    assert "Not saved (422)" in browser.find_element(By.ID, "save-status").text
    assert browser.find_elements(By.CSS_SELECTOR, "#overlay polygon.zone.invalid")
    browser.save_screenshot(str(shots / "setup-refused.png"))
    with live.client("operator") as operator:
        assert operator.get(f"/api/v1/cameras/{CAMERA}/config").json()["version"] == 1  # nothing stored

    # ---- the command centre's plain map: the camera with its view direction, the zone on the ground
    browser.get(live.url + "/")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#map g.camera[data-camera='{CAMERA}'] path.cone")))
    assert browser.find_elements(By.CSS_SELECTOR, "#map polygon.zone-area[data-zone='解放东路人行道']")
    refused = f"/api/v1/cameras/{CAMERA}/config - Failed to load resource: the server responded with a status of"
    refusals = (f"{refused} 404", f"{refused} 422")  # the new camera's GET, the refused PUT
    assert severe_logs(browser, refusals) == []


@pytest.mark.browser
def test_setup_by_keyboard_at_phone_width(browser: Any, live: LiveServer, shots: Path) -> None:
    """At 375 px: nothing wider than the screen; a zone drawn, a vertex moved and one deleted, a calibration
    point placed and saved, with the keyboard only."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 30)
    with live.client("camera") as camera:
        snapshot = png(WIDTH, HEIGHT, (560, 450, 720, 580))
        assert camera.put(
            f"/api/v1/cameras/{CAMERA}/snapshot", content=snapshot, headers={"content-type": "image/png"}
        ).is_success
    with live.client("operator") as operator:
        assert operator.put(f"/api/v1/cameras/{CAMERA}/config", json=stored_config()).status_code == 200
    login(browser, live, "operator")
    wait.until(EC.url_to_be(live.url + "/"))
    browser.set_window_size(375, 812)
    browser.get(live.url + f"/setup/cameras/{CAMERA}")
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "preview-summary"), "已标定 Calibrated"))
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    settle(browser)
    browser.save_screenshot(str(shots / "setup-phone.png"))

    def keys(*sequence: str) -> None:
        ActionChains(browser).send_keys(*sequence).perform()

    def active(attribute: str) -> str | None:
        return browser.switch_to.active_element.get_attribute(attribute)

    # ---- a triangle: Enter on "+ Zone", arrow keys move the cursor, Space places, Enter finishes
    browser.execute_script("document.getElementById('add-zone').focus()")
    keys(Keys.ENTER)
    assert active("id") == "overlay"
    keys(Keys.SPACE, Keys.ARROW_RIGHT * 10, Keys.SPACE, Keys.ARROW_DOWN * 10, Keys.SPACE, Keys.ENTER)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#zones .item[data-index='1']")))
    assert active("name") == "zone-name"
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys(
        "门前 shopfront"
    ).perform()

    # its rules: dwell, anchor, and an allowed window (a morning market, not on Mondays)
    item = "#zones .item[data-index='1']"
    browser.find_element(By.CSS_SELECTOR, f"{item} input[name=dwell_s]").send_keys("120")
    Select(browser.find_element(By.CSS_SELECTOR, f"{item} select[name=anchor]")).select_by_value("center")
    browser.execute_script(f'document.querySelector("{item} .windows + button").focus()')
    keys(Keys.ENTER)
    window = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"{item} .window")))
    window.find_element(By.CSS_SELECTOR, "input[value=mon]").send_keys(Keys.SPACE)
    for name, value in (("from", "06:30"), ("to", "09:00")):
        field = window.find_element(By.CSS_SELECTOR, f"input[name={name}]")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(value)

    def polygon(index: int) -> list[list[float]]:
        return browser.execute_script(
            "return [...document.querySelectorAll('#overlay polygon.zone')][arguments[0]].getAttribute('points')"
            ".split(' ').map((p) => p.split(',').map(Number));", index)  # fmt: skip

    step = round(WIDTH / 100)
    assert polygon(1) == [[640, 360], [640 + 10 * step, 360], [640 + 10 * step, 360 + 10 * step]]

    # ---- Tab reaches the vertices: an arrow key moves one, a midpoint + Enter adds one, Delete removes one
    browser.execute_script("document.querySelector('#overlay circle.handle[data-vertex=\"0\"]').focus()")
    keys(Keys.ARROW_LEFT)
    assert polygon(1)[0] == [640 - step, 360]
    browser.execute_script("document.querySelector('#overlay circle.mid[data-mid=\"0\"]').focus()")
    keys(Keys.ENTER)
    assert len(polygon(1)) == 4 and active("data-vertex") == "1"
    keys(Keys.DELETE)
    assert len(polygon(1)) == 3

    # ---- a seventh calibration point: the pixel by keyboard, then lon/lat typed
    browser.execute_script("document.getElementById('add-point').focus()")
    keys(Keys.ENTER)
    assert active("id") == "overlay"
    keys(Keys.ARROW_LEFT * 10, Keys.ARROW_DOWN * 10, Keys.SPACE)  # the cursor stays where the triangle ended
    assert active("name") == "lon"
    # its place: the row's Map button, then Enter on the map picks the map's centre (+)
    browser.execute_script(
        'document.querySelector(\'#points tr[data-index="6"] button[aria-label^="pick point"]\').focus()'
    )
    keys(Keys.ENTER)
    assert active("id") == "setup-map"
    keys(Keys.ENTER)
    centre = browser.execute_script(
        "const m = document.getElementById('setup-map').swMap.map; return SWMap.lonLatOf(m.getCenter());"
    )
    row = "#points tr[data-index='6']"
    lon, lat = (float(browser.find_element(By.CSS_SELECTOR, f"{row} input[name={k}]").get_attribute("value"))
                for k in ("lon", "lat"))  # fmt: skip
    assert metres((lon, lat), tuple(centre)) < 0.01
    # ... then corrected by typing the surveyed values
    place = ground_of()((640, 360 + 20 * step))
    browser.execute_script(f'document.querySelector("{row} input[name=lon]").focus()')
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
    keys(str(place[0]), Keys.TAB)
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
    keys(str(place[1]))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#points td.reprojection")) == 7)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#points td.reprojection")[6].text not in ("", "—"))
    assert float(browser.find_elements(By.CSS_SELECTOR, "#points td.reprojection")[6].text) < 0.05

    browser.execute_script("document.getElementById('save').focus()")
    keys(Keys.ENTER)
    wait.until(EC.text_to_be_present_in_element((By.ID, "save-status"), "版本 version 2"))
    settle(browser)
    browser.save_screenshot(str(shots / "setup-phone-saved.png"))
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    with live.client("operator") as operator:
        config = operator.get(f"/api/v1/cameras/{CAMERA}/config").json()["config"]
    zone = config["zones"][1]
    assert zone["name"] == "门前 shopfront" and len(zone["polygon"]) == 3
    assert (zone["dwell_s"], zone["anchor"]) == (120, "center")
    assert zone["allowed"] == [{"days": ["tue", "wed", "thu", "fri", "sat", "sun"], "from": "06:30", "to": "09:00"}]
    assert zone["polygon"][0] == pytest.approx([(640 - step) / WIDTH, 360 / HEIGHT], abs=1e-4)
    assert len(config["calibration"]["points"]) == 7
    assert config["calibration"]["points"][6]["px"] == [640, 360 + 20 * step]
    assert severe_logs(browser) == []


# ---- the maps on a basemap ----------------------------------------------------------------------------------


def _tile_png(z: int, x: int, y: int) -> bytes:
    """A 256 px tile: a pale checker by tile, a darker border, so that position and zoom show."""
    base = (226, 232, 220) if (x + y) % 2 else (236, 240, 232)
    rows = []
    for row in range(256):
        line = bytearray([0])
        for col in range(256):
            edge = row < 2 or col < 2
            road = abs(row - col) < 6 or abs(row + col - 255) < 6
            line += bytes((180, 186, 176) if edge else (250, 250, 250) if road else base)
        rows.append(bytes(line))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


class TileServer:
    """XYZ tiles on loopback: generated PNGs, and the paths asked for."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        tiles = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tiles.requests.append(self.path)
                parts = self.path.strip("/").removesuffix(".png").split("/")
                if len(parts) != 3 or not all(p.isdigit() for p in parts):
                    self.send_error(404)
                    return
                body = _tile_png(*map(int, parts))
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the page went on and dropped the request

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tiles() -> Iterator[TileServer]:
    server = TileServer()
    yield server
    server.close()


@pytest.mark.browser
def test_maps_on_a_local_tile_server(browser: Any, tiles: TileServer, tmp_path: Path, shots: Path) -> None:
    """The command centre and the officer's page on a basemap: tiles from the configured host (and the CSP
    allowing just that host), the camera with its view direction, its zone on the ground, the case."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    live = start_server(
        settings_for(
            f"sqlite:///{tmp_path / 'tiles.db'}",
            tile_url=tiles.origin + "/{z}/{x}/{y}.png",
            tile_attribution="test tiles © streetwatch",
        )
    )
    try:
        with live.client("operator") as operator:
            assert operator.put(f"/api/v1/cameras/{CAMERA}/config", json=stored_config()).status_code == 200
            csp = operator.get("/").headers["content-security-policy"]
        assert f"img-src 'self' data: blob: {tiles.origin};" in csp
        stall = ground_of()((640, 560))
        snapshot = png(WIDTH, HEIGHT, (560, 450, 720, 580))
        digest = hashlib.sha256(snapshot).hexdigest()
        evidence = [{"kind": "snapshot", "path": "evidence/x/snapshot.png", "sha256": digest}]
        # A name with markup (alert records come from cameras): shown as text, never parsed.
        record = alert(location={"type": "Point", "coordinates": list(stall)}, zone="<b>人行道</b>", evidence=evidence)
        with live.client("camera") as camera:
            headers = {"content-type": "image/png"}
            assert camera.put(f"/api/v1/evidence/{digest}", content=snapshot, headers=headers).status_code == 200
            assert ingest(camera, record).status_code == 201
        with live.client("admin") as admin:
            for action in ("file", "dispatch"):
                assert admin.post(f"/api/v1/cases/{record['id']}/actions", json={"action": action}).status_code == 200

        browser.set_window_size(1400, 1000)
        login(browser, live, "operator")
        wait.until(EC.url_to_be(live.url + "/"))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#map [data-camera='{CAMERA}'] path.cone")))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#map path.dot[data-id='{record['id']}']")))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#map path.zone-area")))
        wait.until(lambda d: d.execute_script(
            "const t = [...document.querySelectorAll('#map img.leaflet-tile')];"
            "return t.length >= 4 && t.every((i) => i.complete && i.naturalWidth === 256);"
        ))  # fmt: skip
        assert (
            "test tiles © streetwatch"
            in browser.find_element(By.CSS_SELECTOR, "#map .leaflet-control-attribution").text
        )
        zooms = {int(path.strip("/").split("/")[0]) for path in tiles.requests}
        assert zooms and min(zooms) >= 16, tiles.requests  # fitted to a street-sized view
        settle(browser)
        map_shot = shots / "map-dashboard.png"
        browser.find_element(By.ID, "map").screenshot(str(map_shot))
        check_golden(map_shot, "map.png", 6.0)
        tooltips = browser.execute_script(
            "const map = document.getElementById('map').swMap.map;"
            "map.eachLayer((layer) => layer.getTooltip && layer.getTooltip() && layer.openTooltip());"
            "return [...document.querySelectorAll('#map .leaflet-tooltip')]"
            "  .map((t) => [t.textContent, t.querySelectorAll('b').length]);"
        )  # fmt: skip
        assert any("<b>人行道</b>" in text and bold == 0 for text, bold in tooltips), tooltips
        assert any("区域 zone 解放东路人行道" in text for text, _ in tooltips), tooltips

        # ---- the officer, on a phone: the team's case, the camera and its zone
        browser.set_window_size(375, 812)
        login(browser, live, "officer")
        wait.until(EC.url_to_be(live.url + "/officer"))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#map path.dot[data-id='{record['id']}']")))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#map [data-camera='{CAMERA}']")))
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        settle(browser)
        browser.save_screenshot(str(shots / "map-officer-phone.png"))
        assert severe_logs(browser) == []
    finally:
        live.stop()
        live.db.dispose()


@pytest.mark.browser
def test_gcj02_basemap_shifts_positions_only_when_drawn(
    browser: Any, tiles: TileServer, tmp_path: Path, shots: Path
) -> None:
    """With STREETWATCH_TILE_GCJ02=1 the camera is drawn where a GCJ-02 basemap has its street (about 500 m
    from its WGS84 position in Nanjing), and a click on that spot picks the WGS84 position back."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    live = start_server(
        settings_for(f"sqlite:///{tmp_path / 'gcj.db'}", tile_url=tiles.origin + "/{z}/{x}/{y}.png", tile_gcj02=True)
    )
    try:
        with live.client("operator") as operator:
            assert operator.put(f"/api/v1/cameras/{CAMERA}/config", json=stored_config()).status_code == 200
        login(browser, live, "operator")
        wait.until(EC.url_to_be(live.url + "/"))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#map [data-camera='{CAMERA}']")))
        drawn, expected = browser.execute_script(
            "let at = null; document.getElementById('map').swMap.map.eachLayer((l) => {"
            "  if (l.getElement && l.getElement() && l.getElement().dataset.camera) at = l.getLatLng(); });"
            "return [[at.lng, at.lat], SWMap.wgs84ToGcj02(arguments[0], arguments[1])];",
            LON0,
            LAT0,
        )
        assert drawn == pytest.approx(expected, abs=1e-9)
        assert 300 < metres(tuple(drawn), (LON0, LAT0)) < 800

        browser.get(live.url + f"/setup/cameras/{CAMERA}")
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "preview-summary"), "已标定 Calibrated"))  # map fitted
        marker = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#setup-map [data-camera='{CAMERA}']")))
        press(browser, browser.find_element(By.ID, "pick-location"))
        at = browser.execute_script(
            # scrolling the marker itself into view would scroll Leaflet's own (overflow: hidden) container
            "document.getElementById('setup-map').scrollIntoView({block: 'center'});"
            "const r = arguments[0].getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2];",
            marker,
        )
        Stage(browser).click_viewport(*at)
        picked = tuple(float(browser.find_element(By.NAME, n).get_attribute("value")) for n in ("cam_lon", "cam_lat"))
        pixel = browser.execute_script(
            "const m = document.getElementById('setup-map').swMap.map;"
            "return m.containerPointToLatLng([0, 0]).distanceTo(m.containerPointToLatLng([1, 0]));"
        )
        assert metres(picked, (LON0, LAT0)) < 2 * pixel + 0.05  # the basemap's spot, back in WGS84
        assert severe_logs(browser, ("/snapshot?t=",)) == []  # this camera has no snapshot: a blank frame
    finally:
        live.stop()
        live.db.dispose()


def test_setup_page_edits_the_zones_responsible_unit_and_remind_time(browser: Any, live: LiveServer) -> None:
    """Remind first (DESIGN §3.2): per zone, the unit (id and name) and remind_first_s; a bad value is named
    at its field, a good one is saved into the camera's config and read back."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    with live.client("operator") as operator:
        assert operator.put(f"/api/v1/cameras/{CAMERA}/config", json=stored_config()).status_code in (200, 201)
    login(browser, live, "operator")
    wait.until(EC.url_to_be(live.url + "/"))
    browser.get(live.url + f"/setup/cameras/{CAMERA}")
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    zone = "#zones .item[data-index='0'] "
    fields = {name: browser.find_element(By.CSS_SELECTOR, zone + f"input[name={name}]")
              for name in ("responsible-unit", "responsible-name", "remind_first_s")}  # fmt: skip
    fields["responsible-unit"].send_keys("shop-0127")
    fields["responsible-name"].send_keys("张记水果店")
    fields["remind_first_s"].send_keys("90000")
    press(browser, browser.find_element(By.ID, "save"))
    error = wait.until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "[data-error-for='zones.0.remind_first_s'] span"))
    )
    assert "86400" in error.text
    assert fields["remind_first_s"].get_attribute("aria-invalid") == "true"
    fields["remind_first_s"].clear()
    fields["remind_first_s"].send_keys("600")
    press(browser, browser.find_element(By.ID, "save"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "save-status"), "版本 version 2"))
    with live.client("operator") as operator:
        stored = operator.get(f"/api/v1/cameras/{CAMERA}/config").json()["config"]["zones"][0]
    assert (stored["responsible"], stored["remind_first_s"]) == ({"unit": "shop-0127", "name": "张记水果店"}, 600)
    browser.refresh()
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    assert (
        browser.find_element(By.CSS_SELECTOR, zone + "input[name=responsible-name]").get_attribute("value")
        == "张记水果店"
    )
    assert severe_logs(browser, ("422", "/snapshot")) == []  # no snapshot uploaded for this camera
