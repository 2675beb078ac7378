"""The HTML report is one self-contained file that renders, and runs its script, in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vlaeval.cli import main
from vlaeval.reports.synthetic import Outcome, simulate, write_run

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("html")
    rng = np.random.default_rng(3)
    rates = {"libero-spatial": {f"task_{i}": 0.2 + 0.15 * i for i in range(5)},
             "simpler-instruct": {"FreeGraspSingleBananaInScene-v0": 0.4, "AltGraspSpongeDistractorInSceneEnv-v0": 0.2}}
    outcomes = simulate(rates, [0, 1, 2], 6, rng)
    outcomes += [Outcome("libero-spatial", "task_0", 50, 0, False, status="error"),
                 Outcome("libero-spatial", "task_1", 51, 0, True, video=str(root / "run-a" / "videos" / "k.mp4"),
                         instruction="pick up the <b>bowl</b> & \"plate\"")]
    write_run(root / "run-a", outcomes, model="model-a")
    write_run(root / "run-b", simulate(rates, [0, 1, 2], 6, rng), model="model-b")
    runner = CliRunner()
    for args in (["report", "run-a", "run-b", "--format", "html", "--out", "out/report.html"],
                 ["leaderboard", "run-a", "run-b", "--reference", "published", "--format", "html",
                  "--out", "out/leaderboard.html"]):
        result = runner.invoke(main, [*args[:1], *[str(root / a) if a.startswith("run-") else a for a in args[1:-1]],
                                      str(root / args[-1])])
        assert result.exit_code == 0, result.output
    return root / "out"


def test_html_is_self_contained(pages):
    html = (pages / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']https?://""", html) and "@import" not in html
    for needle in ("<svg", 'class="sortable"', 'id="episode-table"', "<video", "Reproducibility",
                   "0123456789abcdef", "heatmap", "&lt;b&gt;bowl&lt;/b&gt;"):
        assert needle in html
    assert 'src="../run-a/videos/k.mp4"' in html  # relative to the report's folder


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp}", *args], capture_output=True, text=True,
                          timeout=90)


@needs_chromium
@pytest.mark.parametrize("page", ["report.html", "leaderboard.html"])
def test_chromium_runs_the_page_without_errors(pages, tmp_path, page):
    url = (pages / page).as_uri() + "#selftest"  # the page clicks every sortable header and filters episodes
    dom = _chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url, tmp=tmp_path / "profile")
    status = re.search(r'id="vlaeval-status" data-state="(\w+)"', dom.stdout)
    assert status and status.group(1) == "ok", dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr


@needs_chromium
def test_chromium_marker_catches_script_errors(pages, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text((pages / "report.html").read_text().replace("(function () {", "(function () { undefinedFn();", 1))
    dom = _chromium("--dump-dom", broken.as_uri(), tmp=tmp_path / "profile")
    assert 'data-state="error"' in dom.stdout


@needs_chromium
def test_chromium_screenshot_is_not_blank(pages, tmp_path):
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,2000", (pages / "report.html").as_uri(), tmp=tmp_path / "p")
    assert shot.exists() and shot.stat().st_size > 10_000
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 20  # text, tables, bars: far from a uniform page
    assert (pixels < 100).mean() > 0.01  # plenty of dark pixels (text, header)
