"""The dashboard's probabilities-over-time chart: one paint as the page draws it (the last
result of each pixel column) vs. a path through every result, in headless Chromium.

The page paints the chart once per animation frame while a recording plays, with every
result so far; a 4 ms-bin model answering each 4-bin frame gives 3,750 results a minute.
Both are ``Lines`` from server/static/charts.js, the baseline with ``visible`` returning every
point. Needs Debian's chromium (``apt-get install chromium``) and playwright (the dev extra).

    python -m bench.dashboard [--results 250 3750 15000] [--classes 20]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import print_table

STATIC = Path(__file__).resolve().parents[1] / "server" / "static"
CHROMIUM = "/usr/bin/chromium"
PAGE = """<!doctype html><html><body>
<canvas id="chart" style="width: 560px; height: 220px"></canvas>
<script type="module">
import { Lines } from "/static/charts.js";

class EveryPoint extends Lines {
  visible() { return this.points; }
}

// ms per paint of a chart holding ``n`` results of ``classes`` classes over a minute.
window.paint = (everyPoint, n, classes, paints) => {
  const chart = new (everyPoint ? EveryPoint : Lines)(
    document.getElementById("chart"), classes, 60e6);
  for (let i = 0; i < n; i++) {
    chart.add((i * 60e6) / n, Array.from({ length: classes },
      (_, c) => 0.5 + 0.5 * Math.sin(i / 40 + c) / classes));
  }
  chart.draw();
  const start = performance.now();
  for (let k = 0; k < paints; k++) chart.draw();
  chart.canvas.getContext("2d").getImageData(0, 0, 1, 1);  // wait for the paints to land
  return (performance.now() - start) / paints;
};
window.ready = true;
</script></body></html>
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve(root: Path) -> ThreadingHTTPServer:
    """``root`` over HTTP on a free loopback port (module scripts are not loaded from file:)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=int, nargs="+", default=[250, 3_750, 15_000])
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--paints", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "static").symlink_to(STATIC)
        (root / "bench.html").write_text(PAGE)
        server = serve(root)
        rows = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                     args=["--headless", "--no-sandbox"])
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/bench.html")
                page.wait_for_function("window.ready === true")
                for n in args.results:
                    # alternated, best of each: both see the same state of the machine
                    ms = {every: float("inf") for every in (True, False)}
                    for _ in range(args.repeats):
                        for every in ms:
                            ms[every] = min(ms[every], page.evaluate(
                                "([e, n, c, p]) => paint(e, n, c, p)",
                                [every, n, args.classes, args.paints]))
                    rows.append([n, ms[True], ms[False], ms[True] / ms[False]])
                browser.close()
        finally:
            server.shutdown()
    print_table(f"probabilities over time: ms per paint, {args.classes} classes, "
                "560×220 CSS px chart",
                ["results", "every result (ms)", "one per pixel column (ms)", "× faster"], rows)


if __name__ == "__main__":
    main()
