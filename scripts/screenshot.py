"""Log in and save full-page screenshots of app pages with Debian's headless Chromium.

Usage: python scripts/screenshot.py BASE_URL USER PASSWORD OUT_DIR PATH [PATH ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    base, user, password, out, *paths = sys.argv[1:]
    Path(out).mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        for path in paths:
            page.goto(f"{base}{path}")
            page.wait_for_timeout(800)
            name = path.strip("/").replace("/", "_") or "home"
            page.screenshot(path=f"{out}/{name}.png", full_page=True)
            print(f"{out}/{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
