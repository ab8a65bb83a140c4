"""The web listening test for tests: a small generated corpus, the real server on loopback (in a
thread, or as `serapp listen-web` in a subprocess), and a plain HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from helpers import make_ravdess_corpus

from serapp.corpora import detect_corpus
from serapp.web.raters import WebPlan
from serapp.web.server import BackgroundServer, link, listen, prepare

LABELS = ("neutral", "happy", "sad", "angry")
SERAPP = [sys.executable, "-c", "import sys; from serapp.cli import main; sys.exit(main(sys.argv[1:]))"]


def small_corpus(root: Path) -> Path:
    """RAVDESS-named clips of 0.25 s: 4 actors x 4 emotions x 2 takes."""
    return make_ravdess_corpus(root, actors=range(1, 5), reps=2, seconds=0.25)


@dataclass
class Running:
    url: str  # the printed link, http://127.0.0.1:PORT/TOKEN/
    folder: Path
    test: object = None
    server: BackgroundServer | None = None
    lines: list = field(default_factory=list)

    @property
    def port(self) -> int:
        return urlsplit(self.url).port

    @property
    def token(self) -> str:
        return urlsplit(self.url).path.strip("/")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def start_server(corpus_dir: Path, folder: Path, clips: int = 6, practice: int = 1) -> Running:
    """The real app under uvicorn in a background thread, on a free loopback port."""
    lines: list[str] = []
    plan = WebPlan(labels=LABELS, n_clips=clips, seed=3, practice_clips=practice)
    test, app, token, lock = prepare(detect_corpus(corpus_dir), plan, folder, log=lines.append)
    sock = listen("127.0.0.1", 0)
    url, _ = link(sock, token)
    server = BackgroundServer(app, sock, lock)
    server.start()
    return Running(url, folder, test, server, lines)


def cli_server(corpus_dir: Path, folder: Path, *args: str, port: int = 0, clips: int = 6) -> tuple[subprocess.Popen, str]:
    """`serapp listen-web` in a subprocess; (the process, the link from its first line)."""
    proc = subprocess.Popen([*SERAPP, "listen-web", str(corpus_dir), "--answers", str(folder),
                             "--port", str(port), "--clips", str(clips), "--practice", "1", "--seed", "3",
                             "--emotions", ",".join(LABELS), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    first = proc.stdout.readline()
    if not first.startswith("open "):
        proc.kill()
        raise AssertionError(f"first line {first!r}; stderr {proc.stderr.read()!r}")
    return proc, first.split()[1]


class Switch:
    """An ASGI app that passes each request to whichever app it holds now: one server on one
    port for many tests, each with a test (and a token and folder) of its own."""

    def __init__(self):
        self.app = None

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


class SharedServer:
    """One real server (uvicorn in a thread) for a module's tests; `use` gives it a new test."""

    def __init__(self):
        self.switch = Switch()
        self.sock = listen("127.0.0.1", 0)
        self.server = BackgroundServer(self.switch, self.sock)
        self.server.start()
        self.lock = None  # the answers folder of the test it serves now

    def use(self, corpus_dir: Path, folder: Path, clips: int = 6, practice: int = 1, rate=None,
            join_rate=(60, 2)) -> Running:
        from serapp.web.app import build_app

        lines: list[str] = []
        plan = WebPlan(labels=LABELS, n_clips=clips, seed=3, practice_clips=practice)
        self.release()  # the test served until now lets its folder go, as a server that stops does
        test, _, token, self.lock = prepare(detect_corpus(corpus_dir), plan, folder, log=lines.append)
        if rate is not None:
            test.rate = rate
        self.switch.app = build_app(test, token, join_rate=join_rate)
        url, _ = link(self.sock, token)
        return Running(url, folder, test, None, lines)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def stop(self) -> None:
        self.server.stop()
        self.release()


class Client:
    """Requests as the page makes them (X-Rater after joining); raw paths are sent as given."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port, self.base = parts.hostname, parts.port, parts.path  # base: /TOKEN/
        self.rater: str | None = None

    def raw(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body) for `path` exactly as given (no normalising of .. or %2F)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            hdrs = dict(headers or {})
            if self.rater:
                hdrs.setdefault("X-Rater", self.rater)
            conn.request(method, path, body=body, headers=hdrs,
                         encode_chunked=body is not None and not isinstance(body, bytes))
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def call(self, method: str, path: str, body=None):
        """(status, JSON or bytes) for an api path under the token."""
        data = None if body is None else json.dumps(body).encode()
        status, headers, raw = self.raw(method, self.base + path, data,
                                        {"Content-Type": "application/json"} if data is not None else None)
        if headers.get("content-type", "").startswith("application/json"):
            return status, json.loads(raw)
        return status, raw

    def join(self, name=None) -> dict:
        status, data = self.call("POST", "api/join", {"code": True} if name is None else {"name": name})
        assert status == 200, (status, data)
        self.rater = data["rater"]
        return data["state"]

    def answer(self, trial: str, label: str | None = None, skip: str | None = None, ms: int = 500, replays: int = 0):
        body = {"trial": trial, "response_ms": ms, "replays": replays}
        body.update({"label": label} if label is not None else {"skip": skip})
        return self.call("POST", "api/answer", body)


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        return "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (pip install -e '.[test]')"
    return None


def chromium(width: int = 1100, height: int = 800, phone: bool = False, scale: float = 1.0):
    """Debian's headless chromium through its chromedriver, both named, so Selenium Manager (which
    would download a browser) is never asked; it is made to fail loudly should anything ask it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def refuse(*args, **kwargs):
        raise RuntimeError("Selenium Manager was asked for a browser: nothing may download one")

    SeleniumManager.binary_paths = refuse
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", f"--window-size={width},{height}"):
        options.add_argument(arg)
    if phone:  # a phone's viewport, its device-width and touch, as Chrome's device mode gives it
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": width, "height": height,
                                                                              "pixelRatio": scale, "touch": True}})
    elif scale != 1.0:
        options.add_argument(f"--force-device-scale-factor={scale}")
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
