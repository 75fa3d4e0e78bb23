"""`make screenshots`: the README's pictures of the dashboard, taken in Debian's Chromium
(through Playwright, as tests/test_browser.py drives it) from the store `make demo` leaves
with ``--keep``: the overview, and the demo session's conversation.

Usage: .venv/bin/python scripts/screenshots.py STORE_DIR [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import start_receiver  # noqa: E402
from tests.test_browser import ARGS, CHROMIUM, open_page, sign_in  # noqa: E402

#: The demo's session: a prompt, a Bash call and the reply (scripts/demo.py SESSION).
SESSION = "04aff4b6-2a3f-417c-9233-9c77515b28d9"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("store", type=Path, help="the directory `make demo --keep` left")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if not (args.store / "receiver.db").exists():
        db = args.store / "receiver.db"
        print(f"screenshots: no {db}: run scripts/demo.py --keep {args.store} first")
        return 2
    if not CHROMIUM.exists():
        print("screenshots: Chromium is not installed: apt-get install -y chromium")
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    rx = start_receiver(args.store, token=token, name="receiver")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            w = open_page(browser, rx)
            sign_in(w, token)
            w.page.wait_for_selector("#live-state.on")
            w.page.screenshot(path=str(args.out / "overview.png"), full_page=True)
            w.page.goto(f"{w.base}/sessions/{SESSION}")
            w.page.locator("details.tool summary").first.click()
            w.page.screenshot(path=str(args.out / "conversation.png"), full_page=True)
            browser.close()
            w.check_clean()
    finally:
        rx.stop()
    for name in ("overview.png", "conversation.png"):
        print(f"screenshots: wrote {(args.out / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
