"""End to end in a real headless browser: open the page, play each clip, rate the whole study, reload
mid-way and go on, then read Table 3 on the admin page and from ``talker.study results``.

Needs Debian's chromium and chromium-driver (.ci/run installs them) and selenium; skipped without them.
``TALKER_STUDY_SCREENSHOTS=<folder>`` keeps the screenshots (docs/images/ holds the README's).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from talker.study.__main__ import main
from talker.study.design import load_study
from tests.study.serving import Browser, Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")

# What the test's rater gives each kind of clip, on every criterion.
SCORES = {"r2talker": 5, "rad_nerf": 3, "er_nerf": 2, "ground_truth": 5, "broken": 1}
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
    "--window-size=900,1000",
)


@pytest.fixture()
def browser(tmp_path: Path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(driver, condition, seconds: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.05).until(condition)


def shown(element_id: str):
    return lambda d: d.find_element("id", element_id).is_displayed()


def current_clip(driver) -> tuple[int, str]:
    """(position, blind id) of the clip on screen, once the page shows one."""
    wait(driver, shown("rate"))
    text = driver.find_element("id", "position").text  # "Video 3 of 8"
    src = driver.find_element("id", "clip").get_attribute("src")
    return int(text.split()[1]), src.rsplit("/", 1)[1].removesuffix(".mp4")


def play_to_end(driver) -> None:
    driver.execute_script("const v = document.getElementById('clip'); v.currentTime = 0; v.play();")
    wait(driver, lambda d: d.execute_script("return document.getElementById('clip').ended"))
    wait(driver, lambda d: d.find_element("id", "hint").is_displayed() is False)


def rate(driver, criterion: str, score: int) -> None:
    """Click a score and wait until the server has acknowledged it (the page says "Saving…" until then)."""
    choice = driver.find_element("css selector", f"fieldset[data-criterion='{criterion}'] input[value='{score}']")
    choice.click()
    wait(driver, lambda d: choice.is_selected() and d.find_element("id", "saved").text.startswith("Saved"))


def test_a_rater_rates_the_whole_study_in_a_browser(browser, study_dir: Path, tmp_path: Path) -> None:
    study = load_study(study_dir)
    shots = Path(os.environ.get("TALKER_STUDY_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    score_of = {i.id: SCORES[i.method or i.kind] for i in study.items}
    db = f"sqlite:///{tmp_path / 'ratings.sqlite'}"
    with Server(study_dir, db) as server:
        browser.get(server.url)
        wait(browser, shown("start"))
        browser.find_element("id", "start").click()
        total = len(study.items)
        seen = []
        while len(seen) < total:
            position, blind = current_clip(browser)
            assert position == len(seen) + 1
            play_to_end(browser)
            for k, criterion in enumerate(study.criterion_keys):
                rate(browser, criterion, score_of[blind])
                if position == 4 and k == 0:
                    # Reload mid-clip: the page comes back on the same clip with the answer given so far.
                    browser.refresh()
                    assert current_clip(browser) == (4, blind)
                    chosen = f"fieldset[data-criterion='{criterion}'] input[value='{score_of[blind]}']"
                    wait(browser, lambda d, css=chosen: d.find_element("css selector", css).is_selected())
            if position == 2:
                browser.save_screenshot(str(shots / "study_rating_page.png"))
            seen.append(blind)
            wait(browser, lambda d: d.find_element("id", "next").is_enabled())
            browser.find_element("id", "next").click()
            if len(seen) < total:
                wait(browser, lambda d, n=len(seen) + 1: d.find_element("id", "position").text.startswith(f"Video {n} "))
        wait(browser, shown("done"))
        assert sorted(seen) == sorted(score_of)
        browser.get(f"{server.url}admin/results?token={server.token}")
        table = browser.find_element("id", "table3").text
        browser.save_screenshot(str(shots / "study_results_table.png"))
        assert Browser(server.url).call("GET", "/admin/results")[0] == 401
    rows = {line.split(" ")[0]: line for line in table.splitlines()}
    assert rows["Ours"].startswith("Ours 5.00 ± 0.00 3.53 5.00 ± 0.00 4.12 5.00 ± 0.00 3.56 2")
    assert rows["RAD-NeRF"].startswith("RAD-NeRF 3.00 ± 0.00 3.15")
    assert rows["ER-NeRF"].startswith("ER-NeRF 2.00 ± 0.00 3.01")
    main(["results", f"study={study_dir}", f"db={db}", f"out={tmp_path / 'results'}"])
    markdown = (tmp_path / "results" / "table3.md").read_text()
    assert "| Ours | **5.00 ± 0.00** |" in markdown and "| ER-NeRF | 2.00 ± 0.00 |" in markdown
    assert (shots / "study_rating_page.png").stat().st_size > 10_000
    assert (shots / "study_results_table.png").stat().st_size > 10_000
