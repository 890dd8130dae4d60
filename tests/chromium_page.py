"""Open a local HTML page in headless Chromium with the network off, over the DevTools protocol.

Used by tests/test_report_page.py. Chromium runs with its host resolver mapping every name to
nothing and a proxy on a closed local port, so any request that leaves the page fails; the
protocol reports every request, console message, exception and the state of each image, and
takes a screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium executable (``$CHROMIUM`` first), or None."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


@dataclass
class PageVisit:
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    console_errors: list[str] = field(default_factory=list)  # console errors, exceptions, log errors
    images: list[dict] = field(default_factory=list)  # src scheme, complete, naturalWidth of each <img>
    screenshot: bytes = b""


_IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
  scheme: i.src.split(':')[0], complete: i.complete, width: i.naturalWidth})))"""


def visit(page: Path, chromium: str, timeout: float = 60.0) -> PageVisit:
    """Load ``page`` with the network off and report what happened (see :class:`PageVisit`)."""
    import websocket  # websocket-client

    profile = tempfile.mkdtemp(prefix="mlabs-chromium-")
    args = [chromium, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking", "--disable-sync",
            "--disable-component-update", "--hide-scrollbars", "--window-size=1280,2000",
            '--host-resolver-rules=MAP * ~NOTFOUND', "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{chromium} did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as fh:
            target = next(t for t in json.load(fh) if t["type"] == "page")
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=timeout,
                                         suppress_origin=True)
        result = PageVisit()
        ids = iter(range(1, 1_000_000))

        def call(method: str, **params) -> dict:
            mid = next(ids)
            ws.send(json.dumps({"id": mid, "method": method, "params": params}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("id") == mid:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return msg.get("result", {})
                events.append(msg)

        events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            call(f"{domain}.enable")
        call("Page.navigate", url=page.resolve().as_uri())
        while not any(e.get("method") == "Page.loadEventFired" for e in events):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{page}: no load event within {timeout} s")
            events.append(json.loads(ws.recv()))
        images = call("Runtime.evaluate", expression=_IMAGES_JS, returnByValue=True)
        result.images = json.loads(images["result"]["value"])
        metrics = call("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        shot = call("Page.captureScreenshot", format="png",
                    clip={"x": 0, "y": 0, "width": 1280, "height": min(size["height"], 4000), "scale": 1})
        result.screenshot = base64.b64decode(shot["data"])
        for e in events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Network.requestWillBeSent":
                result.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                result.console_errors.append(f"request failed: {params.get('errorText')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                result.console_errors.append(f"console: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                result.console_errors.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                result.console_errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        ws.close()
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
