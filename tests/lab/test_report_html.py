"""report.html opens in a real browser and shows its plots: headless Chromium loads the page
from disk (no server), and the page's own inline script marks <body data-images-ok="yes"> when
every <img> has decoded (complete and naturalWidth > 0). A copy with a corrupted image must
read "no", so the marker cannot pass vacuously.

Skipped only when no Chromium binary exists (CI installs Debian's ``chromium`` package).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deepgrad.lab import run_claims
from tests.lab.fake_claims import CoinClaim

pytestmark = pytest.mark.default_dtype("float32")

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "chromium",
              "chromium-browser", "google-chrome")


def _chromium() -> str | None:
    for c in CANDIDATES:
        path = c if Path(c).is_file() else shutil.which(c)
        if path:
            return path
    return None


CHROMIUM = _chromium()


def _dump_dom(page: Path, profile: Path) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           "--disable-sync", f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _marker(dom: str) -> tuple[str | None, int]:
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    ok = re.search(r'data-images-ok="(\w+)"', body.group(0))
    count = re.search(r'data-images-count="(\d+)"', body.group(0))
    return (ok.group(1) if ok else None), int(count.group(1)) if count else -1


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (apt-get install chromium); "
                                              "the HTML report cannot be checked in a browser")
def test_report_html_shows_its_plots_in_headless_chromium(tmp_path):
    run_claims("all", "smoke", 2, None, tmp_path / "out", progress=None,
               claims={"fake": CoinClaim("fake", 1.0)})
    report = tmp_path / "out" / "fake" / "report.html"
    # the report must stand alone: move it away from its PNGs before opening it
    alone = tmp_path / "alone" / "report.html"
    alone.parent.mkdir()
    shutil.copy(report, alone)
    ok, count = _marker(_dump_dom(alone, tmp_path / "profile1"))
    assert count >= 1
    assert ok == "yes"
    # negative control: a corrupted image is detected
    html = alone.read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+",
                             "data:image/png;base64,AAAA", html, count=1))
    ok, count = _marker(_dump_dom(broken, tmp_path / "profile2"))
    assert ok == "no"
    # the index page loads too
    ok, _ = _marker(_dump_dom(tmp_path / "out" / "index.html", tmp_path / "profile3"))
    assert ok == "yes"
