"""The serve page in a real headless Chromium (the Debian package), driven by Playwright:
tiles load and move, a stream added over REST appears, a removed one disappears."""
from __future__ import annotations

import json
import os
import socket
import time
import urllib.request

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)", allow_module_level=True)
pytest.importorskip("aiohttp", reason="needs the serve extra (aiohttp)")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")

from stream.serve import start_server  # noqa: E402
from tests.fakes import LumaTask  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
LIVE = "synth://pattern?size=96x64&live=1&fps=15&seed={seed}"


def post(url: str, body: dict) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as response:
        return response.status


def delete(url: str) -> int:
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10) as response:
        return response.status


def test_page_tiles_live_and_follow_rest(tmp_path):
    server = start_server([("north", LIVE.format(seed=1)), ("south", LIVE.format(seed=2))], port=0,
                          task=LumaTask(), device="cpu", precision="fp32", batch=2)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(  # a fresh --user-data-dir
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
                viewport={"width": 900, "height": 600})
            try:
                page = browser.new_page()
                page.goto(server.url + "/", wait_until="domcontentloaded")
                tile = '.tile[data-name="{}"] img'
                for name in ("north", "south"):
                    page.wait_for_function(
                        f"document.querySelector('{tile.format(name)}')?.naturalWidth > 0", timeout=15000)
                first = {name: page.locator(tile.format(name)).screenshot() for name in ("north", "south")}
                time.sleep(1.5)
                later = {name: page.locator(tile.format(name)).screenshot() for name in ("north", "south")}
                for name in first:
                    assert first[name] != later[name], f"tile {name} did not change"

                assert post(server.url + "/streams", {"source": LIVE.format(seed=3), "name": "east"}) == 201
                page.wait_for_function(
                    f"document.querySelector('{tile.format('east')}')?.naturalWidth > 0", timeout=15000)
                assert page.locator(".tile").count() == 3

                assert delete(server.url + "/streams/north") == 200
                page.wait_for_selector('.tile[data-name="north"]', state="detached", timeout=10000)
                names = page.eval_on_selector_all(".tile", "tiles => tiles.map(t => t.dataset.name)")
                assert sorted(names) == ["east", "south"]
                assert "fps" in page.locator('.tile[data-name="south"] .caption').inner_text()

                with socket.socket() as probe:  # a port nothing listens on: the stream keeps retrying
                    probe.bind(("127.0.0.1", 0))
                    port = probe.getsockname()[1]
                assert post(server.url + "/streams", {"source": f"tcp://127.0.0.1:{port}", "name": "dark"}) == 201
                page.wait_for_function(
                    "document.querySelector('.tile[data-name=\"dark\"] .badge')?.textContent === 'reconnecting'",
                    timeout=10000)
                assert page.locator('.tile[data-name="dark"] .badge').is_visible()
            finally:
                browser.close()
    finally:
        server.close()
