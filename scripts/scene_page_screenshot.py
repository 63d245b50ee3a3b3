"""The README's screenshot of scenes.html: segment a video, open the page in headless Chromium, click a scene, save a PNG.

    .venv/bin/python scripts/scene_page_screenshot.py VIDEO MODEL docs/scenes_page.png

Uses the tests' DevTools-over-a-pipe driver (tests/browser.py) and Debian's chromium.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser import Chromium, find_chromium  # noqa: E402

from bassl.cli import main  # noqa: E402


def run(video: str, model: str, png: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        assert main(["segment", video, "--model", model, "--out", str(out)]) == 0
        exe = find_chromium()
        if exe is None:
            raise SystemExit("no chromium: apt-get install chromium")
        browser = Chromium(exe, Path(tmp) / "profile")
        try:
            browser.open((out / "scenes.html").as_uri())
            browser.evaluate("document.querySelectorAll('.row')[2].click()")
            browser.screenshot(Path(png))
        finally:
            browser.close()
    print(f"screenshot: {png}")


if __name__ == "__main__":
    run(*sys.argv[1:4])
