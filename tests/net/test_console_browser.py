"""The operator console in a real headless Chromium against a real daemon (Selenium).

The daemon runs on a state directory built by real cycles (positions, equity, alerts), started
with the manual's ``scripts/headless_autopilot.py``. The page's equity, positions and halt state
must equal ``--status --json``; Kill (token typed in the page) halts the daemon; Unkill with a
wrong token is refused (401) and changes nothing, with the right one the daemon resumes; a
screenshot of the page is not blank. ``.ci/run`` installs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support.operator_support import operator_state
from _support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
SCRIPT = str(REPO / "scripts" / "headless_autopilot.py")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TOKEN_ENV = "AISTOCK_CONSOLE_TOKEN"
TOKEN = "browser-test-token"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(config: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, SCRIPT, str(config), "--status", "--json"],
                          cwd=config.parent, capture_output=True, text=True, timeout=60,
                          check=True)
    return dict(json.loads(done.stdout))


def _cycles(state: Path) -> int:
    try:
        return int(json.loads((state / "supervisor.json").read_text())["cycles_total"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.fixture()
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    root = tmp_path_factory.mktemp("console")
    config = operator_state(tmp_path_factory.getbasetemp(), root)
    data = json.loads(config.read_text())
    port = _free_port()
    data["monitoring"] = {"listen_port": port, "control_token_env": TOKEN_ENV}
    data.setdefault("supervision", {})["kill_switch_poll_seconds"] = 0.1
    config.write_text(json.dumps(data))
    state = root / "state"
    before = _cycles(state)
    log = root / "daemon.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, SCRIPT, str(config), "--daemon",
                                 "--interval-minutes", "60"], cwd=root, stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, TOKEN_ENV: TOKEN})
    try:
        wait_until(lambda: _cycles(state) > before, 180, "the daemon's first cycle", log)
        yield config, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture()
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600", "--no-proxy-server"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_console_shows_the_status_and_controls_a_running_daemon(
        daemon: tuple[Path, int], browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    driver = browser
    config, port = daemon
    state = config.parent / "state"
    driver.get(f"http://127.0.0.1:{port}/")
    wait_until(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
               == "true", 20, "the console's first refresh")

    status = _status(config)
    paper = status["paper"]
    assert isinstance(paper, dict) and paper["positions"], "the built state has positions"
    wait_until(lambda: float(driver.find_element(By.ID, "equity").get_attribute("data-value")
                             or "nan") == paper["equity"], 5, "the page's equity")
    # read in one script: the page redraws its rows every second (no stale element between)
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#positions tbody tr')]"
        ".map(r => [r.dataset.symbol, Number(r.dataset.quantity), Number(r.dataset.weight)])")
    shown = {symbol: (quantity, weight) for symbol, quantity, weight in rows}
    assert shown == {p["symbol"]: (p["quantity"], p["weight"]) for p in paper["positions"]}
    assert driver.find_element(By.ID, "halt-state").get_attribute("data-halted") == "false"
    assert status["halted"] is False
    assert driver.find_element(By.ID, "process").text.startswith("running, pid ")
    assert driver.find_elements(By.CSS_SELECTOR, "#chart #equity-line")

    token = driver.find_element(By.ID, "token")
    token.send_keys(TOKEN)
    driver.find_element(By.ID, "kill-btn").click()
    took = wait_until(lambda: (state / "HALTED").exists(), 5, "the daemon's halt after Kill")
    print(f"Kill click -> state/HALTED in {took:.2f} s")
    wait_until(lambda: driver.find_element(By.ID, "halt-state").get_attribute("data-halted")
               == "true", 5, "the page showing the halt")
    assert _status(config)["halted"] is True

    token.clear()
    token.send_keys("wrong-token")
    driver.find_element(By.ID, "unkill-btn").click()
    message = driver.find_element(By.ID, "message")
    wait_until(lambda: message.get_attribute("data-status") == "401", 5, "the refusal")
    assert "wrong control token" in message.text
    assert (state / "KILL_SWITCH").exists() and (state / "HALTED").exists()

    token.clear()
    token.send_keys(TOKEN)
    driver.find_element(By.ID, "unkill-btn").click()
    wait_until(lambda: message.get_attribute("data-status") == "200", 5, "the unkill")
    wait_until(lambda: not (state / "HALTED").exists(), 5, "the halt cleared")
    wait_until(lambda: driver.find_element(By.ID, "halt-state").get_attribute("data-halted")
               == "false", 5, "the page showing the resume")
    audit = [json.loads(x) for x in (state / "audit" / "log.jsonl").read_text().splitlines()]
    web = [r["action"] for r in audit if r["actor"] == "web"]
    assert web == ["kill_switch_set_by_operator", "kill_switch_deactivated"], web

    from PIL import Image

    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert image.size[0] >= 800 and colours is not None and len(colours) > 20, image.size
    dominant = max(count for count, _ in colours)
    assert dominant < 0.9 * image.size[0] * image.size[1], "the screenshot is one flat colour"
