"""The dashboard in a real headless Chromium (Debian's `chromium` + `chromedriver`, driven by Selenium): the
page loads, follows the replay of a recorded session through the subscription, and shows the numbers the
log holds. The screenshot is saved under the test's output folder."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from adapters.sqlite_event_log import SqliteEventLog
from tests.api_support import LIVE, SESSION, running_server, sample_home

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _expected(path: Path) -> dict[str, Any]:
    """What the page must show, straight from the log: counts and the last equity sample."""
    fills = spreads = 0
    last_equity: dict[str, Any] | None = None
    with SqliteEventLog(path) as log:
        for stream in log.streams(SESSION):
            for stored in log.read(SESSION, stream):
                kind = stored.record.event_type
                fills += kind in ("order.filled", "order.partially_filled")
                spreads += kind == "signal.spread_opportunity"
                if kind == "portfolio.equity_sampled":
                    event = json.loads(stored.record.payload)
                    if last_equity is None or event["envelope"]["event_time_ns"] >= last_equity["t"]:
                        last_equity = {"t": event["envelope"]["event_time_ns"], **event}
    assert last_equity is not None
    return {"fills": fills, "spreads": spreads, "equity": last_equity["equity"]}


def test_dashboard_shows_a_replayed_session(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        pytest.fail("Debian's chromium and chromedriver are needed: bash deploy/local/browser.sh")
    settings = sample_home(tmp_path / "home")
    expected = _expected(settings.event_log_path)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    with running_server(settings) as server:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.get(f"{server.url}/dashboard?session={SESSION}&speed=0#key={server.keys['admin']}")
            status = lambda d: d.find_element("id", "status").text  # noqa: E731
            WebDriverWait(driver, 60).until(lambda d: status(d) == "replay complete" or "error" in status(d))
            text = {
                i: driver.find_element("id", i).text
                for i in ("status", "fill-count", "spread-count", "equity")
            }
            WebDriverWait(driver, 10).until(lambda d: d.find_element("id", "positions").text != "")
            WebDriverWait(driver, 10).until(lambda d: d.find_element("id", "admin").is_displayed())
            driver.save_screenshot(str(tmp_path / "dashboard.png"))
            # a finished run takes no command: the button says why
            driver.find_element("id", "kill").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_element("id", "kill-result").text != "")
            refused = driver.find_element("id", "kill-result").text
            # on a live session the button appends the admin's command
            driver.get(f"{server.url}/dashboard?session={LIVE}#key={server.keys['admin']}")
            WebDriverWait(driver, 10).until(lambda d: d.find_element("id", "admin").is_displayed())
            driver.find_element("id", "kill").click()
            WebDriverWait(driver, 10).until(
                lambda d: d.find_element("id", "kill-result").text.startswith("command ")
            )
            command_id = driver.find_element("id", "kill-result").text.removeprefix("command ")
        finally:
            driver.quit()
    assert text["status"] == "replay complete"
    assert int(text["fill-count"]) == expected["fills"] > 0
    assert int(text["spread-count"]) == expected["spreads"] > 0
    assert Decimal(text["equity"]) == Decimal(expected["equity"])
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    assert refused.startswith(f"engageKillSwitch: session '{SESSION}' is a finished run"), refused
    with SqliteEventLog(settings.event_log_path) as log:  # the button appended the admin's command to the log
        assert log.end_offset(SESSION, "commands") == 0
        logged = [json.loads(s.record.payload) for s in log.read(LIVE, "commands")]
    assert [(c["type"], c["envelope"]["event_id"]) for c in logged][-1:] == [
        ("command.engage_kill_switch", command_id)
    ]
