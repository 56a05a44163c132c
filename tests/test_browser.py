"""The upload page in a real browser: headless Chromium uploads clips and shows the answer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edge_runtime.wav import write_wav
from tests.conftest import speech_like

pytest.importorskip("flask", reason="Flask is not installed (extra [serve])")
requests = pytest.importorskip("requests")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.test_serve import running_server  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or not os.path.exists(CHROMEDRIVER),
                       reason="needs Debian's chromium and chromium-driver "
                              "(apt-get install -y chromium chromium-driver)"),
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-quic", "--no-first-run",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=900,1000", f"--user-data-dir={profile}",
                 # a fake microphone (a beep), granted without asking, for the record button
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"):
        options.add_argument(flag)
    # An explicit driver path: selenium-manager must not try to download anything.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tiny_models):
    with running_server(tiny_models["float32"]) as url:
        yield url


def upload(browser, url: str, path: Path) -> None:
    browser.get(url + "/")
    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.ID, "classify").click()


def test_page_uploads_a_clip_and_shows_the_prediction(browser, server, tmp_path) -> None:
    clip = tmp_path / "clip.wav"
    write_wav(clip, speech_like(seed=11), 16000)
    expected = requests.post(server + "/api/predict", files={"file": clip.read_bytes()},
                             timeout=30).json()
    upload(browser, server, clip)
    wait = WebDriverWait(browser, 20)
    wait.until(EC.visibility_of_element_located((By.ID, "result")))
    assert browser.find_element(By.ID, "result-label").text == expected["label"]
    shown = browser.find_element(By.ID, "result-prob").text
    assert shown == f"{100 * expected['probability']:.1f} %"
    rows = browser.find_elements(By.CSS_SELECTOR, "#topk .bar-row")
    assert [r.get_attribute("data-label") for r in rows] == [e["label"]
                                                              for e in expected["top_k"]]
    widths = [r.find_element(By.CSS_SELECTOR, ".bar-fill").size["width"] for r in rows]
    assert widths == sorted(widths, reverse=True) and widths[0] > 0
    assert not browser.find_element(By.ID, "error").is_displayed()
    assert "tiny_float32.tflite" in browser.find_element(By.ID, "model-info").text
    shot = Path(os.environ.get("KWS_SCREENSHOT_DIR", tmp_path)) / "upload_page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 1000


def test_page_shows_the_error_for_a_bad_file(browser, server, tmp_path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("these are not audio samples")
    upload(browser, server, bad)
    error = WebDriverWait(browser, 20).until(
        EC.visibility_of_element_located((By.ID, "error")))
    assert "not a WAV file" in error.text
    assert not browser.find_element(By.ID, "result").is_displayed()


def test_page_records_from_the_microphone_and_posts_a_wav(browser, server) -> None:
    browser.get(server + "/")
    labels = requests.get(server + "/api/model", timeout=10).json()["labels"]
    record = browser.find_element(By.ID, "record")
    assert record.is_enabled()
    record.click()
    WebDriverWait(browser, 20).until(EC.visibility_of_element_located((By.ID, "result")))
    assert browser.find_element(By.ID, "result-label").text in labels
    # the page encoded ~1.5 s of the fake microphone as a WAV the server could read
    assert 1.0 <= float(browser.find_element(By.ID, "duration").text) <= 2.5
    assert not browser.find_element(By.ID, "error").is_displayed()
