"""The pages in a real browser (Debian's Chromium via chromedriver): an operator logs in, sees an AI
report arrive live, files and dispatches it; the team's officer marks it handled from a phone-sized
page with a note and a photo. Screenshots go to $STREETWATCH_SCREENSHOTS (else the test's tmp dir)."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.models import CaseChange
from tests.service.helpers import LiveServer, alert, ingest, settings_for, start_chromium, start_server

pytestmark = pytest.mark.browser


def png(width: int, height: int, box: tuple[int, int, int, int]) -> bytes:
    """A small street-like picture (sky, facade, pavement) with an orange 'stall' inside ``box``."""
    x1, y1, x2, y2 = box
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            if x1 <= x < x2 and y1 <= y < y2:
                pixel = (230, 120, 30) if (x // 12 + y // 12) % 2 else (200, 90, 20)
            elif y < height * 0.25:
                pixel = (150, 180, 215)
            elif y < height * 0.55:
                pixel = (170, 150, 130) if (x // 40) % 2 else (160, 140, 120)
            else:
                pixel = (110, 110, 115)
            row += bytes(pixel)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def driver() -> Iterator[Any]:
    browser = start_chromium()
    yield browser
    browser.quit()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(settings_for(f"sqlite:///{tmp_path / 'b.db'}"))
    yield server
    server.stop()
    server.db.dispose()


def test_operator_files_and_dispatches_officer_handles(driver: Any, live: LiveServer, tmp_path: Path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    shots = Path(os.environ.get("STREETWATCH_SCREENSHOTS") or tmp_path / "screens")
    shots.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(driver, 20)

    def shot(name: str) -> None:
        driver.save_screenshot(str(shots / f"{name}.png"))

    def click(css: str) -> None:
        """Click once clickable; live updates may re-render the element in between, so retry."""
        for _ in range(20):
            try:
                wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, css))).click()
                return
            except StaleElementReferenceException:
                continue
        raise AssertionError(f"could not click {css}")

    def login(token: str) -> None:
        # Leave the open page for a script-free one of the same site (cookies are deleted per site);
        # the page's live updates would otherwise fetch without a session and log 401s.
        driver.get(live.url + "/static/app.css")
        driver.delete_all_cookies()
        driver.get(live.url + "/login")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    with live.client("camera") as camera:
        status = {
            "status": "online",
            "last_frame_at": "2026-11-27T09:17:00+08:00",
            "analysis_fps": 4.8,
            "frames_dropped": 2,
        }
        assert camera.post("/api/v1/cameras/cam-jfdl-01/status", json=status).status_code == 200

    # ---- the operator logs in and watches the live list
    login(live.tokens["operator"])
    wait.until(EC.url_to_be(live.url + "/"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#live.on")))
    wait.until(EC.text_to_be_present_in_element((By.ID, "cameras"), "cam-jfdl-01 4.8 fps · 2 dropped"))
    shot("01-command-centre-empty")

    # ---- an AI report arrives (alert record + its snapshot) while the page is open
    bbox = (250, 190, 390, 300)
    image = png(640, 360, bbox)
    digest = hashlib.sha256(image).hexdigest()
    record = alert(
        zone="解放东路人行道", bbox=list(bbox),
        evidence=[{"kind": "snapshot", "path": "evidence/x/snapshot.png", "sha256": digest}],
    )  # fmt: skip
    with live.client("camera") as camera:
        assert (
            camera.put(f"/api/v1/evidence/{digest}", content=image, headers={"content-type": "image/png"}).status_code
            == 200
        )
        assert ingest(camera, record).status_code == 201
    row = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#cases tr[data-id='{record['id']}']")))
    assert "解放东路人行道" in row.text and "待审核" in row.text
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#map circle[data-id='{record['id']}']")))
    shot("02-report-arrived")

    # ---- review: evidence with the detection box, then file and dispatch
    click(f"#cases tr[data-id='{record['id']}']")
    wait.until(
        lambda d: d.execute_script(
            "const i = document.querySelector('#detail figure img'); return i && i.naturalWidth > 0"
        )
    )
    rect = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#detail svg.box rect")))
    assert (rect.get_attribute("x"), rect.get_attribute("width")) == ("250", "140")
    shot("03-evidence-with-box")
    click("button[data-action=file]")
    team = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#detail input[name=team]")))
    assert team.get_attribute("value") == "team-a"  # the grid's team by default
    click("button[data-action=dispatch]")
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#detail h2"), "已派遣"))
    shot("04-dispatched")

    # ---- the officer, on a phone, marks it handled with a note and a photo
    driver.set_window_size(390, 844)
    login(live.tokens["officer"])
    wait.until(EC.url_to_be(live.url + "/officer"))
    card = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"article.card[data-id='{record['id']}']")))
    wait.until(
        lambda d: d.execute_script(
            "const i = document.querySelector('article.card img'); return i && i.naturalWidth > 0"
        )
    )
    shot("05-officer-list")
    photo = tmp_path / "after.png"
    photo.write_bytes(png(320, 240, (0, 0, 0, 0)))
    card.find_element(By.CSS_SELECTOR, "textarea[name=note]").send_keys("摊主已劝离 vendor moved on")
    card.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
    card.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"div.card.done[data-id='{record['id']}']")))
    shot("06-officer-handled")

    with live.client("operator") as operator:
        case = operator.get(f"/api/v1/cases/{record['id']}").json()
    assert case["status"] == "handled"
    assert [(h["action"], h["actor"]) for h in case["history"][1:]] == [
        ("file", "operator-1"), ("dispatch", "operator-1"), (None, "officer-1"), ("handle", "officer-1"),
    ]  # fmt: skip
    assert case["history"][-1]["note"] == "摊主已劝离 vendor moved on"
    assert [e["kind"] for e in case["evidence"]] == ["snapshot", "handling_photo"]
    logs = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert logs == [], logs  # no JS errors, no CSP violations, no failed requests
    if os.environ.get("STREETWATCH_SCREENSHOTS"):
        shutil.copy(photo, shots / "officer-photo.png")


def test_operator_labels_a_box_and_files_rejects_with_a_reason(driver: Any, live: LiveServer, tmp_path: Path) -> None:
    """Review with labels: the operator corrects the box on the clean snapshot (touch, keyboard, then mouse),
    files with it, rejects another report as a parked vehicle; the stored rows hold the box in snapshot
    pixels (the image is shown at about half its size) and the reason; the precision table counts both."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    shots = Path(os.environ.get("STREETWATCH_SCREENSHOTS") or tmp_path / "screens")
    shots.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(driver, 20)
    width, height = 1280, 720
    bbox = (500, 380, 780, 600)
    clean, annotated = png(width, height, bbox), png(64, 36, (25, 21, 39, 33))
    evidence = []
    with live.client("camera") as camera:
        for kind, image in (("snapshot", annotated), ("snapshot_clean", clean)):
            digest = hashlib.sha256(image).hexdigest()
            headers = {"content-type": "image/png"}
            assert camera.put(f"/api/v1/evidence/{digest}", content=image, headers=headers).status_code == 200
            evidence.append({"kind": kind, "path": f"evidence/x/{kind}.png", "sha256": digest})
        to_file, to_reject = alert(bbox=list(bbox), evidence=evidence), alert(bbox=list(bbox), evidence=evidence)
        for record in (to_file, to_reject):
            assert ingest(camera, record).status_code == 201

    driver.get(live.url + "/login")
    driver.find_element(By.ID, "token").send_keys(live.tokens["operator"])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.url_to_be(live.url + "/"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#live.on")))

    def open_case(case_id: str) -> None:
        def click(d: Any) -> bool:
            # The list is drawn again on every case event (SSE), e.g. right after the last action: a row
            # found a moment ago may be gone by the click; find it again then.
            try:
                d.find_element(By.CSS_SELECTOR, f"#cases tr[data-id='{case_id}']").click()
            except (StaleElementReferenceException, NoSuchElementException, ElementClickInterceptedException):
                return False
            return True

        wait.until(click)
        wait.until(lambda d: d.execute_script(
            "const i = document.querySelector('#detail figure.labeller img');"
            "return i && i.naturalWidth > 0 && document.querySelector('#detail input[name=x1]').value !== ''"
        ))  # fmt: skip

    def box() -> list[float]:
        return [float(driver.find_element(By.CSS_SELECTOR, f"#detail input[name={n}]").get_attribute("value"))
                for n in ("x1", "y1", "x2", "y2")]  # fmt: skip

    def viewport(x: float, y: float) -> tuple[int, int]:
        """Viewport pixels of snapshot pixel (x, y), through the image's shown size."""
        r = driver.execute_script(
            "const i = document.querySelector('#detail figure.labeller img'); i.scrollIntoView({block: 'center'});"
            "const r = i.getBoundingClientRect(); return [r.left, r.top, r.width, r.height];"
        )
        return round(r[0] + x * r[2] / width), round(r[1] + y * r[3] / height)

    def drag(kind: str, start: tuple[float, float], end: tuple[float, float]) -> None:
        builder = ActionBuilder(driver, mouse=PointerInput(kind, kind))
        builder.pointer_action.move_to_location(*viewport(*start)).pointer_down()
        for step in range(1, 6):
            t = step / 5
            point = (start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
            builder.pointer_action.move_to_location(*viewport(*point))
        builder.pointer_action.pointer_up()
        builder.perform()

    # ---- the box starts as the detection's own, on the clean snapshot shown at about half size
    open_case(to_file["id"])
    shown = driver.execute_script("return document.querySelector('#detail figure.labeller img').clientWidth")
    assert 300 < shown < width * 0.8, shown  # scaled: display pixels are not snapshot pixels
    rect = driver.find_element(By.CSS_SELECTOR, "#detail figure.labeller svg rect.label")
    assert [rect.get_attribute(a) for a in ("x", "y", "width", "height")] == ["500", "380", "280", "220"]
    assert box() == [500, 380, 780, 600]
    driver.save_screenshot(str(shots / "07-label-editor.png"))

    # ---- a finger drags a box, the keyboard nudges it right by 1 % of the image, then the mouse redraws it
    drag(interaction.POINTER_TOUCH, (100, 100), (300, 250))
    assert all(abs(a - b) <= 2 for a, b in zip(box(), [100, 100, 300, 250], strict=True)), box()
    overlay = driver.find_element(By.CSS_SELECTOR, "#detail figure.labeller svg")
    overlay.send_keys(Keys.ARROW_RIGHT)
    moved = box()
    assert abs(moved[0] - 113) <= 2 and abs(moved[2] - 313) <= 2, moved  # step: 1280 / 100 ≈ 13 px
    target = (412.0, 305.0, 861.0, 655.0)
    drag(interaction.POINTER_MOUSE, target[2:], target[:2])  # drawn from bottom-right to top-left
    drawn = box()
    assert all(abs(a - b) <= 2 for a, b in zip(drawn, target, strict=True)), drawn
    Select(driver.find_element(By.CSS_SELECTOR, "#detail select[name=object_class]")).select_by_value("structure")
    driver.save_screenshot(str(shots / "08-label-drawn.png"))
    driver.find_element(By.ID, "detail").screenshot(str(shots / "08-label-drawn-panel.png"))
    driver.find_element(By.CSS_SELECTOR, "button[data-action=file]").click()
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#detail h2"), "已立案"))
    history = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#detail .history li:last-child")))
    assert "搭建物 structure" in history.text

    # ---- another report: a parked vehicle, rejected with that reason and no note
    open_case(to_reject["id"])
    Select(driver.find_element(By.CSS_SELECTOR, "#detail select[name=reason]")).select_by_value("parked_vehicle")
    driver.find_element(By.CSS_SELECTOR, "button[data-action=reject]").click()
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#detail h2"), "误报"))
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#detail .history"), "停放车辆 parked vehicle"))

    # ---- the precision table: one filed, one rejected this week
    cell = "#precision tr[data-camera='cam-jfdl-01'][data-category='street_vending'] td.precision"
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, cell), "50%"))
    driver.save_screenshot(str(shots / "09-rejected-and-precision.png"))

    with live.client("operator") as operator:
        filed = operator.get(f"/api/v1/cases/{to_file['id']}").json()["history"][-1]
        rejected = operator.get(f"/api/v1/cases/{to_reject['id']}").json()["history"][-1]
    assert (filed["action"], filed["actor"], filed["label"]["object_class"]) == ("file", "operator-1", "structure")
    assert all(abs(a - b) <= 2 for a, b in zip(filed["label"]["bbox"], target, strict=True)), filed["label"]
    assert (rejected["action"], rejected["reason"], rejected["note"], rejected["label"]) == (
        "reject", "parked_vehicle", None, None,
    )  # fmt: skip
    with live.db.reading() as session:
        row = session.scalars(select(CaseChange).where(CaseChange.seq == filed["seq"])).one()
    assert row.label == filed["label"] and all(isinstance(v, float) for v in row.label["bbox"])
    logs = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert logs == [], logs


@pytest.mark.parametrize(
    ("category", "object_class", "label"),
    [
        ("sidewalk_obstruction", "object", "占道堆物 sidewalk obstruction"),
        ("street_vending", "stall", "占道经营 street vending"),
    ],
)
def test_dashboard_filters_by_each_category(
    driver: Any, live: LiveServer, category: str, object_class: str, label: str
) -> None:
    """The category filter offers every category, labelled; picking one lists only its cases, and the
    officer's page names the category the same way."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(driver, 20)
    image = png(320, 180, (100, 60, 160, 120))
    digest = hashlib.sha256(image).hexdigest()
    evidence = [{"kind": "snapshot", "path": "evidence/x/snapshot.png", "sha256": digest}]
    records = {
        name: alert(category=name, object_class=cls, evidence=evidence)
        for name, cls in (("street_vending", "stall"), ("sidewalk_obstruction", "object"))
    }
    with live.client("camera") as camera:
        put = camera.put(f"/api/v1/evidence/{digest}", content=image, headers={"content-type": "image/png"})
        assert put.status_code == 200
        for record in records.values():
            assert ingest(camera, record).status_code == 201
    mine = records[category]["id"]

    driver.get(live.url + "/login")
    driver.find_element(By.ID, "token").send_keys(live.tokens["operator"])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.url_to_be(live.url + "/"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#cases tbody tr[data-id]")) == 2)
    select = Select(driver.find_element(By.CSS_SELECTOR, "#filters select[name=category]"))
    options = [(o.get_attribute("value"), o.text) for o in select.options]
    assert options == [
        ("", "all categories"),
        ("street_vending", "占道经营 street vending"),
        ("storefront_overflow", "出店经营 storefront overflow"),
        ("hanging_laundry", "沿街晾晒 hanging laundry"),
        ("illegal_structure", "乱搭乱建 illegal structure"),
        ("sidewalk_obstruction", "占道堆物 sidewalk obstruction"),
    ]
    select.select_by_value(category)
    wait.until(
        lambda d: [r.get_attribute("data-id") for r in d.find_elements(By.CSS_SELECTOR, "#cases tbody tr")] == [mine]
    )
    row = driver.find_element(By.CSS_SELECTOR, f"#cases tr[data-id='{mine}']")
    assert label in row.text
    row.click()
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#detail h2"), label))

    with live.client("admin") as admin:
        for action in ("file", "dispatch"):
            assert admin.post(f"/api/v1/cases/{mine}/actions", json={"action": action}).status_code == 200
    driver.get(live.url + "/static/app.css")
    driver.delete_all_cookies()
    driver.get(live.url + "/login")
    driver.find_element(By.ID, "token").send_keys(live.tokens["officer"])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.url_to_be(live.url + "/officer"))
    card = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"article.card[data-id='{mine}']")))
    assert label in card.text
    logs = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert logs == [], logs


def test_dashboard_shows_reminded_cases_with_countdown_unit_and_filters(driver: Any, live: LiveServer) -> None:
    """Remind first (DESIGN §3.7) on the command centre: a reminded case counts down to its deadline, the
    case names its responsibility unit with the unit's last days, and the filters pick reminded,
    self-rectified and marked cases."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(driver, 20)
    image = png(320, 180, (100, 60, 160, 120))
    digest = hashlib.sha256(image).hexdigest()
    shop = {"unit": "shop-0127", "name": "张记水果店"}

    def remind(place: int, **fields: Any) -> dict[str, Any]:
        where = {"type": "Point", "coordinates": [118.79702 + 0.001 * place, 32.06013]}
        evidence = [{"kind": "snapshot", "path": "evidence/x/snapshot.png", "sha256": digest}]
        return alert(video_offset_s=None, location=where, evidence=evidence, remind_first_s=600, **fields)

    rectified = remind(1, responsible={"unit": "shop-9", "name": "李记"})
    reminded = remind(2, responsible=shop)
    repeat = remind(3, responsible=shop)
    with live.client("camera") as camera:
        assert (
            camera.put(f"/api/v1/evidence/{digest}", content=image, headers={"content-type": "image/png"}).status_code
            == 200
        )
        for record in (rectified, reminded, repeat):
            assert ingest(camera, record).status_code == 201
        gone = {**rectified, "event": "violation.closed", "ended_at": rectified["alerted_at"]}
        assert ingest(camera, gone).status_code == 201

    driver.get(live.url + "/login")
    driver.find_element(By.ID, "token").send_keys(live.tokens["operator"])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.url_to_be(live.url + "/"))

    # Read in one script: live updates re-render the rows, so elements found earlier may be gone.
    def listed() -> list[str]:
        return list(
            driver.execute_script(
                "return [...document.querySelectorAll('#cases tbody tr[data-id]')].map((r) => r.dataset.id)"
            )
        )

    def countdown_text(case_id: str) -> str:
        return str(
            driver.execute_script(
                "const n = document.querySelector(`#cases tr[data-id='${arguments[0]}'] [data-deadline]`);"
                "return n ? n.textContent : ''",
                case_id,
            )
        )

    wait.until(lambda d: sorted(listed()) == sorted([reminded["id"], repeat["id"]]))  # open cases
    wait.until(lambda d: "剩余 left" in countdown_text(reminded["id"]))
    first = countdown_text(reminded["id"])
    assert first.startswith("⏱ 9:5") or first.startswith("⏱ 10:00"), first
    wait.until(lambda d: countdown_text(reminded["id"]) not in ("", first))  # it ticks
    assert "已提醒 reminded" in driver.find_element(By.CSS_SELECTOR, f"#cases tr[data-id='{reminded['id']}']").text
    assert "重复 repeat" in driver.find_element(By.CSS_SELECTOR, f"#cases tr[data-id='{repeat['id']}']").text

    driver.find_element(By.CSS_SELECTOR, f"#cases tr[data-id='{reminded['id']}']").click()
    unit = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#detail section.unit")))
    assert "张记水果店" in unit.text and "shop-0127" in unit.text
    assert "提醒 reminded 1" in unit.find_element(By.CSS_SELECTOR, ".unit-tally").text
    assert "重复 repeat 1" in unit.find_element(By.CSS_SELECTOR, ".unit-tally").text
    assert len(unit.find_elements(By.CSS_SELECTOR, ".unit-cases li")) == 1  # the repeat case, not itself
    assert driver.find_element(By.CSS_SELECTOR, "#detail h2 [data-deadline]").text.startswith("⏱")

    status = Select(driver.find_element(By.CSS_SELECTOR, "#filters select[name=status]"))

    def only(case_id: str) -> Callable[[Any], bool]:
        return lambda d: listed() == [case_id]

    for value, record in (("reminded", reminded), ("self_rectified", rectified)):
        status.select_by_value(value)
        wait.until(only(record["id"]))
    status.select_by_value("*")
    Select(driver.find_element(By.CSS_SELECTOR, "#filters select[name=mark]")).select_by_value("repeat")
    wait.until(lambda d: listed() == [repeat["id"]])
    logs = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert logs == [], logs
