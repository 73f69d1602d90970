"""The report in a real headless browser: Debian's chromium + chromedriver, driven by Selenium.

CI (``.ci/run``) installs both; elsewhere the test is skipped with the reason. Set
``EGLPP_REPORT_SCREENSHOT=/tmp/eglpp_report.png`` to keep a full-page screenshot.
"""

import os
import shutil
from pathlib import Path

import pytest
from report_helpers import check_table1

from eglpp.io import read_json
from eglpp.report.html import write_report

REQUIRED = os.environ.get("EGLPP_REQUIRE_BROWSER") == "1"  # set by .ci/run: never skip there
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None
)
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:
    webdriver = None
MISSING = ", ".join(
    what
    for what, found in (
        ("chromium", CHROMIUM),
        ("chromedriver (Debian: chromium-driver)", CHROMEDRIVER),
        ("the Python package selenium", webdriver),
    )
    if found is None
)
if MISSING and REQUIRED:
    raise RuntimeError(f"EGLPP_REQUIRE_BROWSER=1 but not installed: {MISSING}")
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"the browser test needs {MISSING} (apt-get install chromium chromium-driver; "
    'pip install -e ".[browser]")',
)


#: Every <img>: loaded, its size, and the luminance variance of its pixels drawn on a canvas.
IMAGES_JS = """
return Array.from(document.images).map((img) => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  let variance = -1;
  if (img.complete && img.naturalWidth > 0) {
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let s = 0, s2 = 0, n = d.length / 4;
    for (let i = 0; i < d.length; i += 4) {
      const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      s += y; s2 += y * y;
    }
    variance = s2 / n - (s / n) ** 2;
  }
  return {alt: img.alt, complete: img.complete, width: img.naturalWidth,
          shown: img.getBoundingClientRect().width, variance: variance,
          data: img.src.startsWith('data:image/png;base64,')};
});
"""

#: Table 1 cells as the reader sees them (innerText of the mean, std and p spans).
CELLS_JS = """
return Array.from(document.querySelectorAll('table.table1 td[data-strategy]')).map((td) => ({
  source: td.closest('table').dataset.source, strategy: td.dataset.strategy, n: td.dataset.n,
  mean: td.querySelector('.mean').innerText, std: td.querySelector('.std').innerText,
  p: td.querySelector('.p').innerText}));
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_report_in_headless_chromium(browser, pose_run, tmp_path):
    page = write_report(pose_run, tmp_path / "report.html")
    browser.get(page.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    assert browser.title.startswith("eglpp report")

    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, f"console errors: {severe}"

    images = browser.execute_script(IMAGES_JS)
    n_png = len(list(pose_run.glob("run-*/*/cycle-*/explain_*.png")))
    assert len(images) == 1 + n_png  # learning curves + the explain figures
    for img in images:
        assert img["data"], f"{img['alt']}: not an embedded PNG"
        assert img["complete"] and img["width"] > 0, f"{img['alt']}: did not load"
        assert img["shown"] > 0, f"{img['alt']}: not displayed"
        assert img["variance"] > 25.0, f"{img['alt']}: blank (luminance variance {img['variance']})"
        if img["alt"].endswith("gallery"):  # legible: shown at its own size, not scaled down
            assert img["shown"] >= 0.95 * img["width"], f"{img['alt']}: shown {img['shown']} px"

    cells = browser.execute_script(CELLS_JS)
    results = read_json(pose_run / "results.json")
    assert check_table1(cells, results, scale=100.0) == 2 * (3 + 1)

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 40, 8000))
    shot = Path(os.environ.get("EGLPP_REPORT_SCREENSHOT", tmp_path / "report.png"))
    assert browser.save_screenshot(str(shot)), "screenshot failed"
    assert shot.stat().st_size > 10_000


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    """A page with a truncated PNG, a blank PNG and a blocked network image fails the checks."""
    import base64
    import io

    from PIL import Image

    from eglpp.report.html_style import CSS, PAGE

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buf, format="PNG")
    blank = base64.b64encode(buf.getvalue()).decode()
    body = (
        '<img alt="truncated" src="data:image/png;base64,iVBORw0KGgo=">'
        f'<img alt="blank" src="data:image/png;base64,{blank}">'
        '<img alt="remote" src="https://example.invalid/x.png">'
    )
    page = tmp_path / "broken.html"
    page.write_text(PAGE.format(title="t", subtitle="", facts="", nav="", css=CSS, body=body,
                                footer=""))  # fmt: skip
    browser.get_log("browser")  # drop earlier entries
    browser.get(page.as_uri())
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe, "a broken image and a blocked request must log console errors"
    images = {i["alt"]: i for i in browser.execute_script(IMAGES_JS)}
    assert images["truncated"]["width"] == 0
    assert images["blank"]["width"] == 40 and images["blank"]["variance"] < 1e-6
    assert images["remote"]["width"] == 0 and not images["remote"]["data"]
