"""Start and stop the embedded Argilla server from kasauti's own environment."""

from __future__ import annotations

import atexit
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from annotator.server.env import ensure_env

RUNNER = Path(__file__).resolve().parent / "_run.py"
OWNER_USERNAME = "owner"


class ServerError(RuntimeError):
    """The embedded server could not start or stopped unexpectedly."""


def write_owner_credentials(path: Path) -> Path:
    """Generate the owner's password and API key once, into a new 0600 file; keep an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    creds = {"username": OWNER_USERNAME, "password": secrets.token_urlsafe(18), "api_key": secrets.token_urlsafe(32)}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f, indent=1)
    return path


def read_owner_credentials(path: Path) -> dict:
    try:
        creds = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ServerError(f"{path}: cannot read the owner credentials: {exc}") from None
    missing = {"username", "password", "api_key"} - set(creds)
    if missing:
        raise ServerError(f"{path}: owner credentials lack {sorted(missing)}")
    return creds


class EmbeddedServer:
    """The real argilla-server on loopback, its state under ``home_dir``.

    ``home_dir`` holds ``argilla.db`` (SQLite), ``owner.json`` (owner username, password and API
    key; mode 0600; generated on first start), ``server.json`` (pid and URL while running) and
    ``server.log``. ``port=0`` picks a free port; ``url`` tells which once started.

        with EmbeddedServer(study.root / "argilla") as srv:
            client = argilla.Argilla(api_url=srv.url, api_key=srv.api_key)
    """

    def __init__(self, home_dir: str | Path, host: str = "127.0.0.1", port: int = 0, *,
                 env_path: str | Path | None = None, startup_timeout: float = 180.0,
                 notify: Callable[[str], None] | None = None):
        self.home = Path(home_dir).expanduser().resolve()
        self.host, self.port = host, int(port)
        self.env_path = Path(env_path) if env_path else None
        self.startup_timeout = startup_timeout
        self.notify = notify
        self.owner_file = self.home / "owner.json"
        self.log_file = self.home / "server.log"
        self.state_file = self.home / "server.json"
        self.process: subprocess.Popen | None = None
        self.url: str | None = None
        self._log_offset = 0  # where this start's lines begin in server.log

    def __repr__(self) -> str:
        return f"EmbeddedServer(home_dir={str(self.home)!r}, url={self.url!r})"

    @property
    def api_key(self) -> str:
        """The owner's API key, read from ``owner.json``."""
        return read_owner_credentials(self.owner_file)["api_key"]

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> "EmbeddedServer":
        """Install the server environment if needed, then start the server and wait until it answers."""
        if self.process and self.process.poll() is None:
            return self
        python = ensure_env(self.env_path, notify=self.notify)
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_owner_credentials(self.owner_file)
        read_owner_credentials(self.owner_file)
        # server.json is left alone: it may name a live server on this home, which the new process
        # detects (its lock) before it replaces the file.
        cmd = [str(python), str(RUNNER), "--home", str(self.home), "--host", self.host, "--port", str(self.port),
               "--parent-pid", str(os.getpid())]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        with open(os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
            self._log_offset = log.seek(0, os.SEEK_END)
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)
        atexit.register(self.stop)  # never leave a server behind when the interpreter exits
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ServerError(f"the Argilla server exited with code {code} while starting; "
                                  f"see {self.log_file}:\n{self._log_tail()}")
            state = self._state()
            if state and state.get("pid") == self.process.pid and _answers(state["url"]):
                self.url = state["url"]
                return
            time.sleep(0.2)
        raise ServerError(f"the Argilla server did not answer within {self.startup_timeout:.0f} s; "
                          f"see {self.log_file}:\n{self._log_tail()}")

    def _state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def _log_tail(self, lines: int = 15) -> str:
        """The last lines this start wrote to the log (never older runs' lines)."""
        try:
            with open(self.log_file, "rb") as f:
                f.seek(self._log_offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def running(self) -> bool:
        return bool(self.process and self.process.poll() is None)

    def wait(self) -> int:
        """Block until the server process exits; return its exit code."""
        return self.process.wait() if self.process else 0

    def stop(self, timeout: float = 15.0) -> None:
        """SIGINT (uvicorn's graceful shutdown), then SIGTERM, then SIGKILL if it will not go."""
        proc, self.process = self.process, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout if sig != signal.SIGKILL else None)
            except subprocess.TimeoutExpired:
                continue
        self.url = None

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def _answers(url: str) -> bool:
    try:
        with _LOOPBACK.open(f"{url}/api/v1/version", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False
