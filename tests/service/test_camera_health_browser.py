"""The command centre in real Chromium (issue #26): a camera whose view moved is shown as such in the camera
strip as soon as its status changes (SSE ``camera.health``), and a case that opened while it was so carries
the mark in the list and in the detail, beside the camera's status now."""

from __future__ import annotations

from typing import Any

from tests.service.helpers import LiveServer, alert, ingest
from tests.service.test_browser import driver, live

__all__ = ["driver", "live"]


def test_camera_state_on_the_dashboard_and_the_case(driver: Any, live: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 20)
    with live.client("camera") as camera:
        assert camera.post("/api/v1/cameras/cam-jfdl-01/status", json={"status": "online"}).status_code == 200
        record = alert(camera_health="view_moved")
        assert ingest(camera, record).status_code == 201
    driver.get(live.url + "/login")
    driver.find_element(By.ID, "token").send_keys(live.tokens["operator"])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#live.on")))
    row = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"tr[data-id='{record['id']}']")))
    assert "视角偏移 view moved" in row.text
    row.click()
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".camera-state"), "now 当前: 在线 online"))
    assert "视角偏移 view moved" in driver.find_element(By.CSS_SELECTOR, ".camera-state").text
    # The camera's view moves: the page learns it from the event stream, not from its 30 s poll.
    with live.client("camera") as camera:
        moved = {"status": "view_moved", "last_error": None}
        assert camera.post("/api/v1/cameras/cam-jfdl-01/status", json=moved).status_code == 200
    WebDriverWait(driver, 10).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-camera='cam-jfdl-01']"), "视角偏移 view moved")
    )
    assert "view_moved" in driver.find_element(By.CSS_SELECTOR, "[data-camera='cam-jfdl-01']").get_attribute("class")
    WebDriverWait(driver, 10).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".camera-state"), "now 当前: 视角偏移 view moved")
    )
