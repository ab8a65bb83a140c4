"""Running the web listening test: the link's token, the listening socket, uvicorn in the
foreground (`serapp listen-web`, Ctrl+C stops it) or in a background thread (the app's "Share in
a browser…").

The token and the key that names trials are kept in the answers folder (readable by its owner
only), so a server started again on the same folder keeps its link, and a rater's retried
answer is still recognised as the one already saved. One server at a time serves a folder: it
holds the folder's lock (serapp.web.folder_lock) while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import re
import secrets
import signal
import socket
import threading
import time
from pathlib import Path

import uvicorn

from serapp.errors import SerappError, printable
from serapp.web.folder_lock import FolderLock

SECRETS_FILE = ".serapp-listen-web.json"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,64}")
_KEY = re.compile(r"[0-9a-f]{64}")


class ServerError(SerappError):
    """The server cannot start; one line naming the address or file and the cause."""


def link_secrets(folder: str | Path, new_link: bool = False) -> tuple[str, bytes]:
    """(token, key) for the test whose answers are in `folder`: those kept there, else new ones
    (kept there for the next start). `new_link` makes a new token (the old link stops working)."""
    folder = Path(folder)
    path = folder / SECRETS_FILE
    try:
        kept = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):  # unreadable or damaged: a new link, said by the link itself
        kept = {}
    if not isinstance(kept, dict):
        kept = {}
    token, key = kept.get("token"), kept.get("key")
    if new_link or not (isinstance(token, str) and _TOKEN.fullmatch(token)):
        token = secrets.token_urlsafe(18)
    if not (isinstance(key, str) and _KEY.fullmatch(key)):
        key = secrets.token_hex(32)
    if kept != {"token": token, "key": key}:
        _write_private(path, json.dumps({"token": token, "key": key}) + "\n")
    return token, bytes.fromhex(key)


def _write_private(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise ServerError(f"{printable(path)}: cannot write: {exc.strerror or exc}") from None


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=256)
    except OSError as exc:
        hint = "; give --port another (0 takes any free one)" if exc.errno == errno.EADDRINUSE else ""
        raise ServerError(f"cannot listen on {printable(host)} port {port}: {exc.strerror or exc}{hint}") from None
    except (OverflowError, ValueError):
        raise ServerError(f"port {port} is out of range (0-65535)") from None


def lan_address() -> str | None:
    """This machine's address on its network (the one a route out would use); None without one.
    Nothing is sent: connecting a UDP socket only picks the route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never answered, only routed
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def link(sock: socket.socket, token: str) -> tuple[str, str]:
    """(the test's link, a note on who can open it) for a bound socket."""
    host, port = sock.getsockname()[:2]
    note = "only this machine can open it (--host 0.0.0.0 for the network)"
    if host in ("0.0.0.0", "::"):
        lan = lan_address()
        host, note = (lan, "anyone on this network can open it") if lan else ("127.0.0.1", "no network found: only this machine can open it")
    elif not (host.startswith("127.") or host == "::1"):
        note = "anyone who can reach this address can open it"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/{token}/", note


class _Server(uvicorn.Server):
    """uvicorn's server, whose Ctrl+C stops it and returns (uvicorn would raise it again after)."""

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _server(app) -> _Server:
    # no access log: a request line is raw input; the test logs its own lines, escaped
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3,
                            log_config=None, server_header=False, limit_concurrency=1000)
    return _Server(config)


def serve_forever(app, sock: socket.socket) -> None:
    """Serve until Ctrl+C (SIGINT) or SIGTERM, then close every connection and return."""
    _server(app).run(sockets=[sock])


class BackgroundServer:
    """The same server in a daemon thread, for the desktop app: start(), then stop(). Given the
    answers folder's lock, it holds it for as long as its thread runs, and releases it after."""

    def __init__(self, app, sock: socket.socket, lock: FolderLock | None = None):
        self.sock = sock
        self.lock = lock
        self._server = _server(app)
        self._thread = threading.Thread(target=self._run, name="listen-web", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self.sock]))
        except BaseException as exc:  # kept for the app to say; a thread has no one to raise it to
            self.error = exc
        finally:
            self._release()

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def start(self, timeout: float = 10.0) -> None:
        try:
            self._thread.start()
        except RuntimeError as exc:  # no thread to be had
            self._release()
            raise ServerError(f"the web server did not start ({exc})") from None
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self.stop()  # should it start after all, it stops, and its thread lets the folder go
            raise ServerError(f"the web server did not start ({type(self.error).__name__ if self.error else 'timed out'})")

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        if self._thread.ident is not None:
            self._thread.join(timeout)
        else:
            self._release()
        with contextlib.suppress(OSError):
            self.sock.close()


def prepare(corpus, plan, folder: str | Path, new_link: bool = False, log=lambda line: None):
    """(WebTest, Starlette app, token, FolderLock) for a test whose answers go to `folder`.

    The folder is locked first, before its link or any answer file is read (FolderInUse when
    another server holds it); the caller keeps the lock while it serves (BackgroundServer's
    thread does), then releases it."""
    from serapp.web.app import build_app
    from serapp.web.raters import WebTest

    lock = FolderLock(folder).acquire()
    try:
        token, key = link_secrets(folder, new_link)
        test = WebTest(corpus, plan, folder, key, log=log)
        return test, build_app(test, token), token, lock
    except BaseException:
        lock.release()
        raise
