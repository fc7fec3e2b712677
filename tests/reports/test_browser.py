"""The report in a real headless Chromium, clicked as a user would: the implementation switch, the
filters (in place with JavaScript, pre-rendered pages without) and a layer page's failures.

Needs /usr/bin/chromium plus either selenium (with chromedriver) or playwright; skipped otherwise.
(Debian: ``apt-get install chromium chromium-driver``; ``pip install selenium``.)
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from keraspec.reports.build import build_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
# The machine may have no network: nothing in Chromium may try to phone home or update.
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
]


def _load_conftest() -> Any:
    spec = importlib.util.spec_from_file_location("_reports_conftest_browser", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


C = _load_conftest()


def _backend() -> str:
    if CHROMIUM is None:
        pytest.skip("no Chromium at /usr/bin/chromium (apt-get install chromium chromium-driver)")
    if importlib.util.find_spec("selenium") is not None:
        if CHROMEDRIVER is None:
            pytest.skip("selenium is installed but chromedriver is not (apt-get install chromium-driver)")
        return "selenium"
    if importlib.util.find_spec("playwright") is not None:
        return "playwright"
    pytest.skip("neither selenium nor playwright is installed (pip install selenium)")


class Browser:
    """The handful of operations the tests need, over selenium or playwright."""

    def __init__(self, backend: str, user_data_dir: Path, javascript: bool):
        self.backend = backend
        self.javascript = javascript
        flags = CHROME_FLAGS + [f"--user-data-dir={user_data_dir}"]
        if backend == "selenium":
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service

            options = webdriver.ChromeOptions()
            options.binary_location = CHROMIUM
            for flag in flags:
                options.add_argument(flag)
            if not javascript:
                # The content-settings pref is ignored for file: URLs; the Blink setting is not.
                options.add_argument("--blink-settings=scriptEnabled=false")
            options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
            # An explicit driver path keeps Selenium Manager from trying to download one.
            self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        else:
            from playwright.sync_api import sync_playwright

            self._pw = sync_playwright().start()
            self._ctx = self._pw.chromium.launch_persistent_context(
                str(user_data_dir), executable_path=CHROMIUM, headless=True,
                args=[f for f in flags if not f.startswith(("--headless", "--user-data-dir"))],
                java_script_enabled=javascript,
            )
            self.page = self._ctx.new_page()
            self._errors: list[str] = []
            self.page.on("console", lambda m: self._errors.append(m.text) if m.type == "error" else None)
            self.page.on("pageerror", lambda e: self._errors.append(str(e)))

    def open(self, url: str) -> None:
        if self.backend == "selenium":
            self.driver.get(url)
        else:
            self.page.goto(url)

    def select(self, element_id: str, value: str) -> None:
        if self.backend == "selenium":
            from selenium.webdriver.support.ui import Select

            Select(self.driver.find_element("id", element_id)).select_by_value(value)
        else:
            self.page.select_option(f"[id='{element_id}']", value)

    def click(self, element_id: str) -> None:
        if self.backend == "selenium":
            self.driver.find_element("id", element_id).click()
        else:
            self.page.click(f"[id='{element_id}']")

    def click_css(self, selector: str) -> None:
        if self.backend == "selenium":
            self.driver.find_element("css selector", selector).click()
        else:
            self.page.click(selector)

    def visible_css(self, selector: str) -> list[str]:
        """Texts of the visible elements matching a CSS selector."""
        if self.backend == "selenium":
            return [e.text for e in self.driver.find_elements("css selector", selector) if e.is_displayed()]
        loc = self.page.locator(selector)
        return [loc.nth(i).inner_text() for i in range(loc.count()) if loc.nth(i).is_visible()]

    def attribute(self, element_id: str, name: str) -> str | None:
        if self.backend == "selenium":
            return self.driver.find_element("id", element_id).get_attribute(name)
        return self.page.locator(f"[id='{element_id}']").get_attribute(name)

    def exists(self, element_id: str) -> bool:
        if self.backend == "selenium":
            return bool(self.driver.find_elements("id", element_id))
        return self.page.locator(f"[id='{element_id}']").count() > 0

    def visible(self, element_id: str) -> bool:
        if self.backend == "selenium":
            found = self.driver.find_elements("id", element_id)
            return bool(found) and found[0].is_displayed()
        loc = self.page.locator(f"[id='{element_id}']")
        return loc.count() > 0 and loc.first.is_visible()

    def text(self, element_id: str) -> str:
        if self.backend == "selenium":
            return self.driver.find_element("id", element_id).text
        return self.page.locator(f"[id='{element_id}']").inner_text()

    def url(self) -> str:
        return self.driver.current_url if self.backend == "selenium" else self.page.url

    def errors(self) -> list[str]:
        """Console errors (a CSP violation or a script error shows up here)."""
        if self.backend == "selenium":
            return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        errors, self._errors = self._errors, []
        return errors

    def quit(self) -> None:
        if self.backend == "selenium":
            self.driver.quit()
        else:
            self._ctx.close()
            self._pw.stop()


def row(layer: str, impl: str = C.IMPL) -> str:
    """The id of a matrix row: one implementation of one layer."""
    return f"row-{layer}--{impl}"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = C.make_results(tmp_path_factory.mktemp("browser-results"))
    return build_report([results.results_dir], tmp_path_factory.mktemp("browser-html"), previous=results.previous)


@pytest.fixture(scope="module")
def two_impl_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = C.make_two_impl_results(tmp_path_factory.mktemp("browser-two-impls"))
    return build_report([results.results_dir], tmp_path_factory.mktemp("browser-two-html"), previous=results.previous)


def _browser(tmp_path_factory: pytest.TempPathFactory, javascript: bool) -> Iterator[Browser]:
    backend = _backend()
    browser = Browser(backend, tmp_path_factory.mktemp("chromium-profile"), javascript)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def js_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    yield from _browser(tmp_path_factory, javascript=True)


@pytest.fixture(scope="module")
def nojs_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    yield from _browser(tmp_path_factory, javascript=False)


# -- the implementation switch --------------------------------------------------------------------------
def test_js_implementation_switch(js_browser: Browser, two_impl_report: Path) -> None:
    b = js_browser
    b.open(two_impl_report.as_uri())
    assert b.visible(row("Conv2D")) and b.visible(row("Conv2D", C.PEER))
    assert b.attribute("impl-switch-all", "aria-current") == "true"

    b.click(f"impl-switch-{C.PEER}")  # in place: the page does not change
    assert b.url().startswith(two_impl_report.as_uri())
    assert "impl=" in b.url()
    assert b.visible(row("Conv2D", C.PEER)) and not b.visible(row("Conv2D"))
    assert b.attribute(f"impl-switch-{C.PEER}", "aria-current") == "true"
    assert b.attribute("impl-switch-all", "aria-current") is None
    # The summary shows only the chosen implementation's columns; the other headline is dimmed.
    assert b.visible_css("#summary-family thead th.impl-head") == [C.PEER_LABEL]
    assert "unselected" in (b.attribute(f"impl-card-{C.IMPL}", "class") or "")
    assert "unselected" not in (b.attribute(f"impl-card-{C.PEER}", "class") or "")
    # The failure list follows it too, and the filter form agrees with the switch.
    shown = b.visible_css("#failures-table tr[data-case]")
    assert shown and all(C.PEER_LABEL in r for r in shown)
    assert b.text("filter-summary").startswith("Showing 7 of 14 cases (impl = Keras 3 (torch backend))")

    b.click(f"impl-switch-{C.IMPL}")
    assert b.visible(row("Conv2D")) and not b.visible(row("Conv2D", C.PEER))
    assert b.visible_css("#summary-family thead th.impl-head") == [C.IMPL_LABEL]
    assert b.visible_css("#failures-table tr[data-case]") == []  # keraspec.impl fails nothing

    b.click("impl-switch-all")
    assert b.visible(row("Conv2D")) and b.visible(row("Conv2D", C.PEER))
    assert b.visible_css("#summary-family thead th.impl-head") == [C.IMPL_LABEL, C.PEER_LABEL]
    assert b.errors() == []


def test_js_implementation_from_a_shared_link(js_browser: Browser, two_impl_report: Path) -> None:
    b = js_browser
    b.open(two_impl_report.as_uri() + "?impl=" + C.PEER)
    assert not b.visible(row("Dense")) and b.visible(row("Dense", C.PEER))
    assert b.attribute(f"impl-switch-{C.PEER}", "aria-current") == "true"
    assert b.errors() == []


def test_no_js_implementation_switch_opens_its_page(nojs_browser: Browser, two_impl_report: Path) -> None:
    b = nojs_browser
    b.open(two_impl_report.as_uri())
    b.click(f"impl-switch-{C.PEER}")
    assert b.url().endswith(f"filter-impl-{C.PEER}.html")
    assert b.visible(row("Conv2D", C.PEER)) and not b.exists(row("Conv2D"))
    assert b.attribute(f"impl-switch-{C.PEER}", "aria-current") == "true"
    b.click("impl-switch-all")
    assert b.visible(row("Conv2D")) and b.visible(row("Conv2D", C.PEER))


# -- the filters ----------------------------------------------------------------------------------------
def test_js_status_filter_hides_passing_rows(js_browser: Browser, report: Path) -> None:
    b = js_browser
    b.open(report.as_uri())
    assert b.visible("filters"), "the script should reveal the filter form"
    assert b.visible(row("ReLU")) and b.visible(row("Dense")) and b.visible(row("Conv2D"))
    assert b.text("filter-summary") == "Showing all 10 cases."

    b.select("filter-status", "failed")
    assert b.visible(row("Dense")), "a failing layer must stay visible"
    assert not b.visible(row("ReLU")), "a passing layer must be hidden"
    assert not b.visible(row("Conv2D"))
    assert not b.visible(row("LayerNormalization"))  # error, not failed
    assert b.text("filter-summary").startswith("Showing 2 of 10 cases")

    b.select("filter-oracle", "keras3")  # combined: failed on keras3 only -> Dense's failure is tf_keras
    assert not b.visible(row("Dense"))
    b.select("filter-oracle", "tf_keras")
    assert b.visible(row("Dense"))
    assert "status=failed" in b.url() and "oracle=tf_keras" in b.url()

    b.click("filter-reset")
    assert b.visible(row("ReLU")) and b.visible(row("Dense"))
    assert b.errors() == []


def test_js_filter_recomputes_cells(js_browser: Browser, report: Path) -> None:
    b = js_browser
    b.open(report.as_uri() + "?oracle=keras3")  # a shared link restores the filter
    assert b.visible(row("Dense"))
    # Dense/forward over keras3 alone is a pass: the tf_keras failure is filtered out.
    cells = b.visible_css(f"[id='{row('Dense')}'] td[data-c='all']")
    assert len(cells) == 1 and cells[0].startswith("passed"), cells
    assert b.errors() == []


def test_js_filter_by_placeholder_value(js_browser: Browser, two_impl_report: Path) -> None:
    b = js_browser
    b.open(two_impl_report.as_uri())
    b.select("filter-oracle", C.NO_VALUE)  # the raw value; the option reads "none (spec-only check)"
    assert b.text("filter-summary") == "Showing 2 of 14 cases (oracle = none (spec-only check))."
    assert b.visible(row("Conv2D")) and not b.visible(row("Dense"))
    assert b.errors() == []


def test_js_filter_hides_rows_in_case_lists(js_browser: Browser, report: Path) -> None:
    b = js_browser
    b.open(report.as_uri())
    b.select("filter-family", "normalization")
    assert not b.visible(row("Dense")) and b.visible(row("LayerNormalization"))
    shown = b.visible_css("#failures-table tr[data-case]")
    assert len(shown) == 1 and "LayerNormalization" in shown[0]


def test_no_js_static_failures_page(nojs_browser: Browser, report: Path) -> None:
    b = nojs_browser
    b.open(report.as_uri())
    assert not b.visible("filters"), "JavaScript should be off here; the form stays hidden"
    assert b.visible(row("ReLU")) and b.visible(row("Dense"))  # the unfiltered matrix is all there
    assert b.visible("problem-list")
    b.click("quick-filter-status-failed")
    assert b.url().endswith("filter-status-failed.html")
    assert b.visible(row("Dense")), "the failing layer must be shown"
    assert not b.exists(row("ReLU")) and not b.exists(row("Conv2D")), "passing layers must be absent"
    b.click("quick-all")
    assert b.visible(row("ReLU"))


# -- a layer page ----------------------------------------------------------------------------------------
def test_layer_page_failures_first_and_grid_links(js_browser: Browser, two_impl_report: Path) -> None:
    b = js_browser
    b.open(two_impl_report.as_uri())
    b.click_css(f"[id='{row('Conv2D', C.PEER)}'] td[data-c='all'] a")  # the failing row's summary cell
    assert b.url().endswith("layers/Conv2D.html")
    # The first thing on the page after the headline is the failure, with what is needed to act on it.
    details = b.visible_css("article.case-detail")
    assert details[0].startswith("failed") and C.PEER_LABEL in details[0]
    assert "max abs err vs atol" in details[0] and C.PEER_FAIL_MESSAGE in details[0]
    assert b.visible_css("article.case-detail pre.repro")[0] == C.PEER_FAIL_REPRO
    assert b.visible_css("article.case-detail button.copy-btn"), "the copy button runs under the CSP"
    # Passing cases are cells of the grid; a failing cell leads to its details.
    b.click_css(f"[id='grid-{C.PEER}'] td.st-failed a")
    assert "#case-" in b.url()
    target = b.url().rsplit("#", 1)[1]
    assert b.text(target).startswith("failed")
    assert b.errors() == []


def test_layer_page_copy_button_runs_under_csp(js_browser: Browser, report: Path) -> None:
    b = js_browser
    b.open((report.parent / "layers" / "Dense.html").as_uri())
    assert b.visible_css("button.copy-btn")
    assert b.errors() == []
