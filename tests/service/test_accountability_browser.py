"""Accountability pages in a real browser (Debian's Chromium): the assessment page shows the API's figures
for the constructed history of test_assessment; a demo camera registered the way `streetwatch demo` does
opens its setup page on the clip's first frame with its zones. Screenshots go to $STREETWATCH_SCREENSHOTS
(else the test's tmp dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.demo import SAMPLES, register_camera
from tests.service.helpers import FakeClock, LiveServer, settings_for, start_chromium, start_server
from tests.service.test_assessment import FROM, NOW, TO, build_history

pytestmark = pytest.mark.browser

COLUMNS = [
    ("reported", "count"), ("filed", "count"), ("rejected", "count"), ("filing_rate", "rate"),
    ("dispatched", "count"), ("handled_on_time", "count"), ("overdue", "count"), ("closed", "count"),
    ("closing_rate", "rate"), ("reopened", "count"), ("rework_rate", "rate"), ("self_rectified", "count"),
    ("median_hours_to_close", "hours"), ("repeat_places", "count"),
]  # fmt: skip


def shown(value: Any, kind: str) -> str:
    """How the page writes a figure (assessment.js `cell`)."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "hours":
        return f"{value:.1f}"
    return str(value)


@pytest.fixture
def driver() -> Iterator[Any]:
    browser = start_chromium("--hide-scrollbars", "--force-device-scale-factor=1")
    yield browser
    browser.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("STREETWATCH_SCREENSHOTS") or tmp_path / "screens")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def login(driver: Any, live: LiveServer, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(live.url + "/static/app.css")
    driver.delete_all_cookies()
    driver.get(live.url + "/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def severe_logs(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.mark.parametrize("by", ["team", "category"])
def test_assessment_page_shows_the_api_figures(driver: Any, tmp_path: Path, shots: Path, by: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    url = f"sqlite:///{tmp_path / 'a.db'}"
    build_history(url)
    live = start_server(settings_for(url), clock=FakeClock(NOW))
    try:
        with live.client("supervisor") as client:
            table = client.get("/api/v1/stats/assessment", params={"from": FROM, "to": TO, "by": by}).json()
        wait = WebDriverWait(driver, 20)
        login(driver, live, live.tokens["supervisor"])
        wait.until(EC.url_to_be(live.url + "/"))
        link = wait.until(EC.visibility_of_element_located((By.ID, "assessment-link")))
        assert link.get_attribute("href") == live.url + "/assessment"
        driver.get(f"{live.url}/assessment?from={FROM.replace('+', '%2B')}&to={TO.replace('+', '%2B')}&by={by}")
        wait.until(lambda d: d.execute_script("return document.body.dataset.loaded || ''"))
        for item in [*table["items"], table["total"]]:
            cells = driver.find_elements(By.CSS_SELECTOR, f"#assessment tr[data-group='{item['group']}'] td.num")
            assert [c.text for c in cells] == [shown(item[key], kind) for key, kind in COLUMNS], item["group"]
        groups = [r.get_attribute("data-group") for r in driver.find_elements(By.CSS_SELECTOR, "#assessment tbody tr")]
        assert groups == [item["group"] for item in table["items"]]
        csv_link = driver.find_element(By.ID, "csv").get_attribute("href")
        assert "format=csv" in csv_link and f"by={by}" in csv_link
        driver.execute_script("document.activeElement && document.activeElement.blur()")
        driver.save_screenshot(str(shots / f"assessment-{by}.png"))
        assert severe_logs(driver) == []
    finally:
        live.stop()
        live.db.dispose()


def test_operators_do_not_get_the_assessment_page(tmp_path: Path) -> None:
    live = start_server(settings_for(f"sqlite:///{tmp_path / 'o.db'}"))
    try:
        for role, status in (("operator", 403), ("officer", 403), ("supervisor", 200), ("admin", 200)):
            with live.client(role) as client:
                assert client.get("/assessment").status_code == status, role
    finally:
        live.stop()
        live.db.dispose()


def test_a_demo_camera_opens_on_its_snapshot_and_zones(driver: Any, tmp_path: Path, shots: Path) -> None:
    """What `streetwatch demo` does for each sample camera (detector.demo.register_camera), then its setup
    page: the clip's first frame, the config's zones drawn on it, the stored version loaded (not 'new')."""
    from datetime import UTC, datetime

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    live = start_server(settings_for(f"sqlite:///{tmp_path / 'd.db'}"))
    try:
        camera_yaml = SAMPLES / "street_day.camera.yaml"
        camera_id = register_camera(
            live.url,
            camera_yaml,
            admin_token=live.tokens["admin"],
            camera_token=live.tokens["camera"],
            captured_at=datetime(2026, 12, 7, 9, tzinfo=UTC),
        )
        with live.client("admin") as admin:
            config = admin.get(f"/api/v1/cameras/{camera_id}/config").json()
            snapshot = admin.get(f"/api/v1/cameras/{camera_id}/snapshot")
        assert config["version"] == 1 and snapshot.headers["content-type"] == "image/jpeg"
        zones = [zone["name"] for zone in config["config"]["zones"]]
        login(driver, live, live.tokens["operator"])
        WebDriverWait(driver, 20).until(lambda d: d.current_url == live.url + "/")
        driver.set_window_size(1400, 1000)
        driver.get(f"{live.url}/setup/cameras/{camera_id}")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
        assert driver.execute_script("return document.getElementById('snapshot').naturalWidth") == 960
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#zones .item")) == len(zones))
        names = [
            e.get_attribute("value") for e in driver.find_elements(By.CSS_SELECTOR, "#zones input[name=zone-name]")
        ]
        assert names == zones
        drawn = driver.find_elements(By.CSS_SELECTOR, "#overlay polygon[data-kind=zone]")
        assert len(drawn) == len(zones)  # on the frame
        page = driver.find_element(By.TAG_NAME, "body").text
        assert "not saved yet" not in page
        driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
        driver.save_screenshot(str(shots / "demo-camera-setup.png"))
        assert severe_logs(driver) == []
    finally:
        live.stop()
        live.db.dispose()
