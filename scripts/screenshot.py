"""Log in and save full-page screenshots of app pages with Debian's headless Chromium.

Usage: python scripts/screenshot.py [--width=390] BASE_URL USER PASSWORD OUT_DIR PATH [PATH ...]

--width sets the viewport width (default 1400, e.g. 390 for a phone); files get a -<width> suffix then.
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
    args = sys.argv[1:]
    width = 1400
    if args and args[0].startswith("--width="):
        width = int(args.pop(0).split("=", 1)[1])
    base, user, password, out, *paths = args
    suffix = "" if width == 1400 else f"-{width}"
    Path(out).mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": width, "height": 900 if width > 600 else 844})
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        for path in paths:
            page.goto(f"{base}{path}")
            page.wait_for_timeout(800)
            name = (
                path.strip("/").replace("/", "_").replace("?", "_").replace("=", "-").replace("&", "_")
                or "home"
            )
            page.screenshot(path=f"{out}/{name}{suffix}.png", full_page=True)
            print(f"{out}/{name}{suffix}.png")
        browser.close()


if __name__ == "__main__":
    main()
