"""The report in a real headless browser (Debian's chromium and chromedriver, driven by selenium):
it loads with no console errors, requests nothing but its own file, lays its charts out, and
shows the headline numbers of the dataset it was made from.

Under CI (``CI=true``, as ``.ci/run`` runs) missing chromium is a failure, not a skip: a green
CI run must mean the page was really opened; ``.ci/run`` installs chromium and chromium-driver
from Debian's packages. On a developer's machine without them the tests skip with one line that
names what to install, so the README's test command passes on a fresh machine.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import report_data

import deliverypulse as dp
from deliverypulse.analysis import Analysis, analyze
from deliverypulse.dataset import Dataset
from deliverypulse.dora import summary

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = (
    "`.ci/run` installs them: apt-get install -y chromium chromium-driver "
    "(and `pip install -e .[test]` brings selenium)"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,2000",
)


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing(what: str) -> None:
    """Fail under CI; elsewhere skip with one line naming what to install."""
    if under_ci():
        pytest.fail(f"{what}; {INSTALL_HINT}")
    pytest.skip(f"browser test skipped: {what}; {INSTALL_HINT}")


def _require_browser() -> Any:
    """selenium's webdriver module, or a failure (CI) or skip (elsewhere) naming what is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if missing:
        _missing(f"{', '.join(missing)} not found")
    try:
        from selenium import webdriver
    except ImportError:
        _missing("selenium is not installed")
    return webdriver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def organisation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Analysis, Path]:
    ds = report_data.organisation()
    analysis = analyze(ds)
    path = dp.report(ds, tmp_path_factory.mktemp("report") / "report.html", analysis=analysis)
    return ds, analysis, path


def _open(driver: Any, path: Path) -> dict[str, Any]:
    """Load ``path`` and return what happened: console entries and requested URLs."""
    driver.get_log("browser")  # drop anything logged before this page
    driver.get_log("performance")
    url = path.resolve().as_uri()
    driver.get(url)
    assert driver.execute_script("return document.readyState") == "complete"
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        params = message["params"]
        # The browser's own pages (a new tab loading chrome:// resources) are not ours.
        if params["request"]["url"] == url or params.get("documentURL") == url:
            requests.append(params["request"]["url"])
    return {"url": url, "console": driver.get_log("browser"), "requests": requests}


def _metrics(driver: Any) -> dict[str, tuple[str, str]]:
    from selenium.webdriver.common.by import By

    found = {}
    for element in driver.find_elements(By.CSS_SELECTOR, "[data-metric]"):
        found[element.get_attribute("data-metric")] = (
            element.text.strip(),
            element.get_attribute("data-value"),
        )
    return found


def test_page_loads_offline_with_no_console_errors(
    browser: Any, organisation: tuple[Dataset, Analysis, Path]
) -> None:
    loaded = _open(browser, organisation[2])
    severe = [entry for entry in loaded["console"] if entry["level"] == "SEVERE"]
    assert severe == []
    assert loaded["requests"] == [loaded["url"]]


def test_headline_numbers_shown_are_the_datasets(
    browser: Any, organisation: tuple[Dataset, Analysis, Path]
) -> None:
    ds, _, path = organisation
    _open(browser, path)
    shown = _metrics(browser)
    expected = summary(ds).iloc[0]
    for metric in (
        "deployments_per_day",
        "lead_time_median_hours",
        "change_failure_rate",
        "recovery_median_hours",
        "rework_rate",
        "deployments",
        "failed_deployments",
        "deployment_attempts",
        "lead_time_count",
    ):
        text, value = shown[metric]
        assert text, f"{metric} is not visible"
        assert float(value) == pytest.approx(float(expected[metric])), metric
    failed, attempts = int(expected["failed_deployments"]), int(expected["deployment_attempts"])
    assert shown["change_failure_rate"][0] == f"{100 * failed / attempts:.1f} %"
    assert shown["failed_deployments"][0] == str(failed)
    assert shown["deployment_attempts"][0] == str(attempts)
    assert shown["deployments"][0] == f"{int(expected['deployments']):,}"
    per_day = float(expected["deployments_per_day"])
    assert shown["deployments_per_day"][0] == f"{per_day:.1f} per day"


def test_verdict_and_charts_are_visible(
    browser: Any, organisation: tuple[Dataset, Analysis, Path]
) -> None:
    from selenium.webdriver.common.by import By

    _, analysis, path = organisation
    _open(browser, path)
    headline = browser.find_element(By.CSS_SELECTOR, "[data-headline]")
    assert headline.is_displayed()
    assert headline.text == analysis.headline
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 5  # the last: failure rate with and without each control
    for chart in charts:
        box = browser.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", chart
        )
        assert box[0] > 300 and box[1] > 150, box
    # Nothing overflows the page sideways at a laptop's width.
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0


def test_a_board_reads_the_plain_answer_first_and_ratings_per_repo(
    browser: Any, organisation: tuple[Dataset, Analysis, Path], tmp_path: Path
) -> None:
    """The page as a board member sees it: the first sentence under the title is the
    analysis's headline in plain words, above the numbers; no test names or odds ratios in
    that card; each headline number's rating is the spread of the repos' own ratings."""
    from selenium.webdriver.common.by import By

    ds, analysis, _ = organisation
    plain = report_data.plain_analysis(analysis)
    path = dp.report(ds, tmp_path / "board.html", analysis=plain)
    _open(browser, path)
    headline = browser.find_element(By.CSS_SELECTOR, "[data-headline]")
    assert headline.is_displayed()
    assert headline.text == report_data.PLAIN_HEADLINE
    tiles = browser.find_element(By.CSS_SELECTOR, ".tiles")
    # Above the numbers, and within the first screen of a laptop.
    assert headline.location["y"] < tiles.location["y"]
    assert headline.location["y"] < 400
    card = browser.find_element(By.ID, "answer").text
    assert card.index(report_data.PLAIN_HEADLINE) < card.index(report_data.PLAIN_BATCH)
    for word in ("odds ratio", "Fisher", "Mantel", "Mann-Whitney", "Spearman", "p = "):
        assert word not in card, word
    for sentence in plain.what_if["plain"]:
        assert sentence in card
    # The statistics are one layer down: on the page, but folded away.
    statistics = browser.find_element(By.ID, "statistics")
    assert analysis.gates.statement not in statistics.text
    by_repo = summary(ds, by=["repo"])
    total = len(by_repo)
    spreads = browser.find_elements(By.CSS_SELECTOR, '[data-spread][data-unit="repo"]')
    assert {element.get_attribute("data-spread") for element in spreads} == {
        "deployments_per_day",
        "lead_time_median_hours",
        "change_failure_rate",
        "recovery_median_hours",
    }
    columns = {
        "deployments_per_day": "deployment_frequency_cluster",
        "lead_time_median_hours": "lead_time_cluster",
        "change_failure_rate": "change_failure_rate_cluster",
        "recovery_median_hours": "recovery_cluster",
    }
    for element in spreads:
        assert element.is_displayed()
        counts = by_repo[columns[element.get_attribute("data-spread")]].value_counts()
        words = [
            (name, int(counts[name]))
            for name in ("elite", "high", "medium", "low")
            if name in counts
        ]
        (first, many), *rest = words
        expected = ", ".join(
            [f"{many} of {total} repos {first}", *(f"{n} {name}" for name, n in rest)]
        )
        assert element.text == expected
    # The per-repo table names each repo's own rating.
    ratings = browser.find_elements(By.CSS_SELECTOR, "#repos td[data-rating]")
    assert len(ratings) == 4 * total
    assert all(cell.text.split()[-1] in ("elite", "high", "medium", "low") for cell in ratings)


def test_empty_dataset_page_loads_cleanly(browser: Any, tmp_path: Path) -> None:
    path = dp.report(report_data.no_deployments(), tmp_path / "empty.html")
    loaded = _open(browser, path)
    assert [entry for entry in loaded["console"] if entry["level"] == "SEVERE"] == []
    assert loaded["requests"] == [loaded["url"]]
    assert _metrics(browser)["change_failure_rate"] == ("—", "")


def test_a_missing_browser_skips_outside_ci_and_fails_under_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _path: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium chromium-driver"):
        _require_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        _require_browser()
