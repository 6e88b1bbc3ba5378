"""The demo page in a real browser: headless Chromium driven by selenium.

``python -m trio_asgi --port 0`` serves the built-in demo app in a subprocess, and
the test reads the port from its "Listening on" log line. Chromium and its driver
come from the system (Debian: ``apt-get install chromium chromium-driver``); the test
is skipped when either, or selenium (``pip install -e '.[browser]'``), is missing.

The page is loaded twice: over plain HTTP/1.1, and over HTTPS with ALPN, where
Chromium must pick HTTP/2 (``nextHopProtocol == "h2"`` for the page, its fetch and
its event stream). The certificate comes from trustme and Chromium trusts its public
key only (``--ignore-certificate-errors-spki-list``). The server offers RFC 8441
extended CONNECT, so Chromium opens the demo's WebSocket on the same HTTP/2 connection
(the access log says so).

Set ``TRIO_ASGI_SCREENSHOT=/tmp/demo.png`` to keep a screenshot of the page.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[browser]'")

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
#: Longest wait for anything to appear on the page (a loaded CI machine is slow).
WAIT = 30.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
        reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)",
    ),
]


@contextmanager
def _serve_demo(*extra: str) -> Iterator[tuple[str, list[str]]]:
    """The demo app served by ``python -m trio_asgi --port 0 ...``; its base URL and log."""
    process = subprocess.Popen(
        [sys.executable, "-m", "trio_asgi", "--port", "0", "--no-use-colors", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    urls: queue.Queue[str | None] = queue.Queue()

    def read_log() -> None:
        # Drains the pipe for the server's whole life, so logging never blocks it.
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)
            if match := re.search(r"Listening on (https?://\S+)", line):
                urls.put(match.group(1))
        urls.put(None)

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        url = urls.get(timeout=WAIT)
        assert url is not None, "the server exited before listening:\n" + "".join(log)
        yield url, log
        process.send_signal(signal.SIGINT)
        # The page's SSE stream and WebSocket must not hold up a graceful stop.
        assert process.wait(timeout=WAIT) == 0, "".join(log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=WAIT)
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture
def demo_url() -> Iterator[str]:
    """The demo app over plain HTTP/1.1; its base URL."""
    with _serve_demo() as (url, _):
        yield url


@dataclass
class TLSDemo:
    """The demo served over TLS with ALPN (``h2,http/1.1``) and a trustme certificate.

    Attributes:
        url: The ``https://`` base URL.
        spki: The base64 SHA-256 of the certificate's public key, which Chromium is
            told to trust (``--ignore-certificate-errors-spki-list``).
        log: The server's log lines so far.
    """

    url: str
    spki: str
    log: list[str]


@pytest.fixture
def tls_demo(tmp_path: Path) -> Iterator[TLSDemo]:
    cert = trustme.CA().issue_cert("127.0.0.1", "localhost")
    pem = tmp_path / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    public_key = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).public_key()
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spki = base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")
    with _serve_demo("--ssl-certfile", str(pem), "--ssl-keyfile", str(pem)) as (url, log):
        assert url.startswith("https://"), url
        yield TLSDemo(url, spki, log)


@contextmanager
def _chromium(tmp_path: Path, *extra: str) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile and nothing that talks to the Internet."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,1400",
        f"--user-data-dir={tmp_path / 'profile'}",
        *extra,
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    with _chromium(tmp_path) as driver:
        yield driver


@pytest.fixture
def tls_browser(tls_demo: TLSDemo, tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Chromium that trusts only the demo's certificate, by its public key (the flag
    applies with a throwaway ``--user-data-dir``, which every profile here is)."""
    with _chromium(tmp_path, f"--ignore-certificate-errors-spki-list={tls_demo.spki}") as driver:
        yield driver


_EVENTS_SNAPSHOT = """
return [document.querySelectorAll("#events-log li").length,
        document.getElementById("events-status").textContent];
"""


def _text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def _items(driver: WebDriver, list_id: str) -> list[str]:
    return [str(item.text) for item in driver.find_elements(By.CSS_SELECTOR, f"#{list_id} li")]


def test_demo_page_in_chromium(demo_url: str, browser: webdriver.Chrome, tmp_path: Path) -> None:
    browser.get(demo_url + "/")
    _check_demo_page(browser, tmp_path / "demo.png")


_PROTOCOLS = """
const navigation = performance.getEntriesByType("navigation")[0];
const resources = {};
for (const entry of performance.getEntriesByType("resource")) {
    resources[new URL(entry.name).pathname] = entry.nextHopProtocol;
}
return [navigation.nextHopProtocol, resources];
"""


def test_demo_page_in_chromium_over_https_and_http2(
    tls_demo: TLSDemo,
    tls_browser: webdriver.Chrome,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    tls_browser.get(tls_demo.url + "/")
    navigation, _ = tls_browser.execute_script(_PROTOCOLS)
    assert navigation == "h2"
    _check_demo_page(tls_browser, tmp_path / "demo-h2.png")

    # The fetch and the event stream went over the same HTTP/2 connection.
    _, resources = tls_browser.execute_script(_PROTOCOLS)
    assert resources.get("/hello") == "h2", resources
    assert resources.get("/events") == "h2", resources
    # The WebSocket went over HTTP/2 too (RFC 8441: the server offers extended CONNECT).
    ws_lines = [line for line in tls_demo.log if "/ws" in line]
    assert ws_lines, "".join(tls_demo.log)
    assert all("HTTP/2" in line for line in ws_lines), ws_lines
    record_property("websocket_protocol", "HTTP/2")


def _check_demo_page(browser: webdriver.Chrome, screenshot_path: Path) -> None:
    """The demo page at work: the fetch, the event stream, the WebSocket echo."""
    wait = WebDriverWait(browser, WAIT, poll_frequency=0.1)
    assert browser.title == "trio-asgi demo"

    # 1. The fetch of /hello: status and JSON on the page.
    wait.until(lambda d: "Hello from trio-asgi!" in _text(d, "hello-result"))
    assert _text(browser, "hello-result").startswith("200 ")

    # 2. Server-sent events appear one by one while the stream is still open (10 events,
    # 0.5 s apart): the list and the status are read together, in one script.
    count, status = wait.until(
        lambda d: (snapshot := d.execute_script(_EVENTS_SNAPSHOT))[0] >= 3 and snapshot
    )
    assert 3 <= count < 10
    assert status == "streaming..."
    assert _items(browser, "events-log")[:3] == [f"event {n} of 10" for n in (1, 2, 3)]

    # 3. The WebSocket echo: type, send, see the echo; close and see the code.
    wait.until(lambda d: _text(d, "ws-status") == "open")
    field = browser.find_element(By.ID, "ws-input")
    field.clear()
    field.send_keys("Grüße from Chromium")
    browser.find_element(By.ID, "ws-send").click()
    wait.until(lambda d: "echo: Grüße from Chromium" in _items(d, "ws-log"))
    assert _items(browser, "ws-log") == ["sent: Grüße from Chromium", "echo: Grüße from Chromium"]
    browser.find_element(By.ID, "ws-close").click()
    wait.until(lambda d: _text(d, "ws-status").startswith("closed"))
    assert _text(browser, "ws-status") == "closed (code 1000)"

    # The stream ends with its "done" event after the tenth.
    wait.until(lambda d: _text(d, "events-status") == "done")
    assert _items(browser, "events-log") == [f"event {n} of 10" for n in range(1, 11)]

    screenshot = Path(os.environ.get("TRIO_ASGI_SCREENSHOT", screenshot_path))
    assert browser.save_screenshot(str(screenshot))

    # A tidy page logs nothing to the console: no failed request, no script error.
    console = browser.get_log("browser")  # type: ignore[no-untyped-call]
    problems = [entry for entry in console if entry["level"] != "INFO"]
    assert problems == []
