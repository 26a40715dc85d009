#!/usr/bin/env python
"""Widget weight and start-up time in real Chromium.

    .venv/bin/python bench/widget_load.py              # 30 cold loads of each page (about 20 s)
    .venv/bin/python bench/widget_load.py --runs 100

Prints the size of static/widget/minirag-widget.js (raw and gzip; target: ≤ 40 KB raw, no
dependencies) and of the part it loads when the chat is first opened, then the time from inserting
its <script data-…> tag into a page to the launcher being on screen (after the next frame),
measured in /usr/bin/chromium over loopback, each load in a fresh browser context (no cache). The
baseline, measured in the same run and the same way, is the smallest possible custom element: a
script that defines an element with one button in a shadow root. The ratio says what the widget's
own work costs on top of loading any script.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WIDGET = ROOT / "static" / "widget" / "minirag-widget.js"
# The conversation code and the de/fr texts, loaded when the chat is first opened (not at start-up).
WIDGET_EXTRA = ROOT / "static" / "widget" / "minirag-widget-extra.js"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

BASELINE = b"""(function () {
  class Minimal extends HTMLElement {
    connectedCallback() {
      const button = document.createElement("button");
      button.className = "launcher";
      button.textContent = "Chat";
      this.attachShadow({ mode: "open" }).appendChild(button);
      this.setAttribute("data-ready", "");
      this.dispatchEvent(new CustomEvent("minirag:ready", { bubbles: true, composed: true }));
    }
  }
  customElements.define("minirag-widget", Minimal);
  document.body.appendChild(document.createElement("minirag-widget"));
})();"""

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bench</title></head>
<body><h1>Host page</h1><script>
document.addEventListener("minirag:ready", function (event) {
  var widget = event.target;
  requestAnimationFrame(function () {
    var box = widget.shadowRoot.querySelector(".launcher").getBoundingClientRect();
    if (box.width > 0) window.__visible = performance.now() - window.__start;
  });
});
window.__start = performance.now();
var s = document.createElement("script");
s.src = "/%s";
s.setAttribute("data-bot-id", "00000000-0000-0000-0000-000000000000");
s.setAttribute("data-api-url", "http://127.0.0.1:9");
s.setAttribute("data-api-token", "nrag_live_benchmark");
document.body.appendChild(s);
</script></body></html>"""


def serve() -> tuple[ThreadingHTTPServer, str]:
    files = {
        "/widget.js": (WIDGET.read_bytes(), "text/javascript"),
        "/baseline.js": (BASELINE, "text/javascript"),
        "/widget": (PAGE.replace("%s", "widget.js").encode(), "text/html"),
        "/baseline": (PAGE.replace("%s", "baseline.js").encode(), "text/html"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in files:
                self.send_error(404)
                return
            body, kind = files[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def measure(browser: Any, url: str) -> float:
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.__visible !== undefined", timeout=10_000)
    elapsed = page.evaluate("window.__visible")
    context.close()
    return float(elapsed)


def main() -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="Cold loads of each page (default 30).")
    args = parser.parse_args()
    raw = WIDGET.read_bytes()
    print(f"widget size: {len(raw):,} bytes raw, {len(gzip.compress(raw, 9)):,} bytes gzip (target ≤ 40,000 raw)")
    extra = WIDGET_EXTRA.read_bytes()
    print(f"loaded on first open: {len(extra):,} bytes raw, {len(gzip.compress(extra, 9)):,} bytes gzip")
    server, base = serve()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for warm_up in ("/baseline", "/widget"):
                measure(browser, base + warm_up)
            widget, baseline = [], []
            for _ in range(args.runs):  # interleaved, so drift hits both alike
                baseline.append(measure(browser, base + "/baseline"))
                widget.append(measure(browser, base + "/widget"))
            browser.close()
    finally:
        server.shutdown()
    w50, b50 = statistics.median(widget), statistics.median(baseline)
    w95 = sorted(widget)[int(0.95 * (len(widget) - 1))]
    print(f"script inserted → launcher on screen, median of {args.runs} cold loads:")
    print(f"  minimal custom element (baseline): {b50:.1f} ms")
    print(f"  minirag-widget:                    {w50:.1f} ms (p95 {w95:.1f} ms)")
    print(f"  ratio: {w50 / b50:.2f}; the widget's own cost: {w50 - b50:+.1f} ms")
    return 0 if len(raw) <= 40_000 else 1


if __name__ == "__main__":
    sys.exit(main())
