#!/usr/bin/env python
"""Screenshots of the MLflow UI on a small sweep, for docs/tracking.md ("Comparing runs in the
MLflow UI"): the clicks from the sweep to the gamma-vs-cma-vs-pso chart of each system.

Usage: python scripts/ui_screenshots.py [--out docs/images] [--store DIR] [--port 5077]
                                        [--chromium /usr/bin/chromium]

Runs ``python run.py -m optimizer=gamma,cma,pso system=s1,s2 budget=1000 layers=[2,6,9]`` into a
new MLflow store in a temporary folder (or uses ``--store DIR`` holding ``mlflow.db`` from an
earlier call), starts ``mlflow ui`` on it (127.0.0.1, one worker) and drives headless Chromium
through the UI with Playwright, writing ui_1_runs.png ... to ``--out``. Not a test: the UI's
layout changes between MLflow versions, and the pictures are for people to look at.

Needs Playwright for Python (``.venv/bin/pip install playwright``) and a Chromium binary
(``apt-get install chromium``; Playwright's own browser download is not needed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "ui_demo"
SWEEP = ["-m", "optimizer=gamma,cma,pso", "system=s1,s2", "budget=1000", "layers=[2,6,9]",
         f"tracking.experiment={EXPERIMENT}"]


def run_sweep(store: Path) -> None:
    """The small sweep, tracked into ``store/mlflow.db``."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{store / 'mlflow.db'}")
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *SWEEP,
                           f"hydra.sweep.dir={store / 'sweep'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: the sweep failed:\n{proc.stderr[-2000:]}")
    print(f"sweep: 6 jobs in {time.time() - t0:.0f} s")


def start_ui(store: Path, port: int) -> subprocess.Popen:
    """``mlflow ui`` on the store (own process group), once it accepts connections."""
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri",
                             f"sqlite:///{store / 'mlflow.db'}", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            process_group=0)
    deadline = time.time() + 180
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None:
            sys.exit(f"error: mlflow ui ended (code {proc.returncode})")
        time.sleep(1)
    os.killpg(proc.pid, signal.SIGTERM)
    sys.exit(f"error: mlflow ui did not answer on port {port} within 180 s")


def shoot(url: str, out: Path, chromium: str) -> list[Path]:
    """The clicks of docs/tracking.md, a screenshot after each step: the sweep expanded in the
    runs table; one system's jobs in the chart view (per-layer section collapsed); its
    end-to-end best-so-far chart (``best_cost``); the other system's ``x_bound``."""
    from playwright.sync_api import sync_playwright

    files: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 900})

        def snap(name: str) -> None:
            page.wait_for_timeout(3000)
            files.append(out / name)
            page.screenshot(path=str(files[-1]))

        def expand_sweep(system: str) -> None:
            """Click the "+" box left of the sweep's name unless its jobs show already."""
            if not page.get_by_text(f"{system} gamma |").count():
                page.locator("button[data-component-id$='runnamecellrenderer.tsx_46']").first.click()
                page.wait_for_timeout(3000)

        def filter_runs(text: str) -> None:
            box = page.get_by_placeholder('metrics.rmse < 1 and params.model = "tree"')
            box.fill(text)
            box.press("Enter")
            page.wait_for_timeout(3000)

        page.goto(url)
        page.wait_for_timeout(5000)
        page.get_by_role("button", name="Close").last.click()  # the assistant's side panel
        page.get_by_text("Model training", exact=True).first.click()
        page.wait_for_timeout(2000)
        page.get_by_role("link", name=EXPERIMENT, exact=True).first.click()
        page.wait_for_timeout(4000)
        expand_sweep("s1")
        snap("ui_1_sweep_runs.png")
        filter_runs("tags.system = 's1'")
        page.locator("label:has(input[name=runs-view-mode][value=CHART])").click()
        page.wait_for_timeout(4000)
        expand_sweep("s1")
        page.locator("text=/^layers$/").first.click()  # collapse the per-layer section
        snap("ui_2_chart_view_s1.png")
        charts = page.get_by_placeholder("Search metric charts")
        charts.fill("best_cost")
        snap("ui_3_best_cost_s1.png")
        filter_runs("tags.system = 's2'")
        expand_sweep("s2")
        charts.fill("x_bound")
        snap("ui_4_x_bound_s2.png")
        browser.close()
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "images"))
    ap.add_argument("--store", help="a folder with mlflow.db from an earlier call (no new sweep)")
    ap.add_argument("--port", type=int, default=5077)
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = ap.parse_args(argv)
    if not args.chromium:
        sys.exit("error: no Chromium found (apt-get install chromium, or --chromium PATH)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="gamma-ui-"))
    if not args.store:
        run_sweep(store)
    ui = start_ui(store, args.port)
    try:
        files = shoot(f"http://127.0.0.1:{args.port}/", out, args.chromium)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait()
    print(f"wrote {len(files)} screenshots to {out}; store {store}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
