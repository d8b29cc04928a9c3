"""The embedded server's files and life cycle: owner-only files, no request input in the log, a
second server that leaves the live one alone, failures reported without old log lines, and a
server that stops when the process that started it is killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from annotator.connect import embedded_address
from annotator.server import EmbeddedServer, ServerError

REPO = Path(__file__).resolve().parents[1]
OLD_FAILURE = "Traceback (most recent call last):\n  an old, unrelated failure OLD-UNRELATED\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (exited, not yet reaped) is gone too
        return f.read().split(") ")[1][0] != "Z"


def test_every_file_of_the_server_is_owner_only(server_python, tmp_path):
    home = tmp_path / "argilla"
    home.mkdir(mode=0o755)
    (home / "server.log").write_text("from an earlier server\n")
    (home / "server.log").chmod(0o644)
    with EmbeddedServer(home) as srv:
        r = httpx.post(f"{srv.url}/api/v1/workspaces", headers={"X-Argilla-Api-Key": srv.api_key}, json={"name": "hi"})
        assert r.status_code == 201, r.text
        names = {p.name for p in home.iterdir()}
        assert {"argilla.db", "argilla.db-wal", "argilla.db-shm", "server.log", "server.json", "owner.json"} <= names
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (home, *home.iterdir())}
    assert {name: mode for name, mode in modes.items() if mode & 0o077} == {}


def test_rejected_requests_are_logged_without_their_input(embedded_server):
    srv = embedded_server
    headers = {"X-Argilla-Api-Key": srv.api_key}
    secret = "shortPW"  # too short for argilla (8 characters at least)
    r = httpx.post(f"{srv.url}/api/v1/users", headers=headers,
                   json={"first_name": "Zed", "username": "zed", "password": secret, "role": "annotator"})
    assert r.status_code == 422, r.text
    me = httpx.get(f"{srv.url}/api/v1/me", headers=headers).json()["id"]
    r = httpx.patch(f"{srv.url}/api/v1/users/{me}", headers=headers, json={"password": "tinyPW"})
    assert r.status_code == 422, r.text
    log = srv.log_file.read_text()
    assert secret not in log and "tinyPW" not in log
    assert "password" in log  # the rejection itself is still logged, by field and error type


def test_second_server_leaves_the_live_one_alone_and_reports_only_its_own_failure(embedded_server):
    live = embedded_server
    with open(live.log_file, "a") as f:
        f.write(OLD_FAILURE)
    with pytest.raises(ServerError) as exc:
        EmbeddedServer(live.home, startup_timeout=60).start()
    message = str(exc.value)
    assert "another server is already running" in message
    assert "OLD-UNRELATED" not in message and "Traceback" not in message
    assert embedded_address(live.home)[0] == live.url  # status and pull still find the live server
    assert httpx.get(f"{live.url}/api/v1/version").status_code == 200


def test_port_in_use_reports_only_the_current_failure(server_python, tmp_path):
    home = tmp_path / "argilla"
    home.mkdir()
    (home / "server.log").write_text(OLD_FAILURE)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerError) as exc:
            EmbeddedServer(home, port=port, startup_timeout=60).start()
    message = str(exc.value)
    assert f"cannot listen on 127.0.0.1:{port}" in message
    assert "OLD-UNRELATED" not in message and "Traceback" not in message


def _serve(study: Path) -> subprocess.Popen:
    """`kasauti serve` on a new study, once it says the server is up. Its Ctrl-C works as in a terminal even
    when this process ignores SIGINT (an ignored signal is inherited through exec)."""
    study.mkdir()
    (study / "kasauti.yaml").write_text("name: t\ndata:\n  path: items.jsonl\nannotation:\n  port: 0\n")
    proc = subprocess.Popen([sys.executable, "-m", "kasauti", "serve", str(study)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if "Ctrl-C" in line:
            break
    return proc


def _stop(proc: subprocess.Popen, state_file: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    try:
        os.kill(json.loads(state_file.read_text())["pid"], signal.SIGKILL)
    except (OSError, ValueError, KeyError):
        pass


def test_cli_serve_twice_keeps_the_live_server_reachable(server_python, tmp_path):
    study = tmp_path / "study"
    first = _serve(study)
    try:
        url = json.loads((study / "argilla" / "server.json").read_text())["url"]
        second = subprocess.run([sys.executable, "-m", "kasauti", "serve", str(study)], capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO, timeout=180)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "another server is already running" in second.stderr and "Traceback" not in second.stderr
        assert embedded_address(study / "argilla")[0] == url
    finally:
        _stop(first, study / "argilla" / "server.json")


def test_kill_9_of_cli_serve_stops_the_server(server_python, tmp_path):
    study = tmp_path / "study"
    first = _serve(study)
    state_file = study / "argilla" / "server.json"
    pid = json.loads(state_file.read_text())["pid"]
    try:
        first.kill()  # SIGKILL: the CLI gets no chance to stop the server
        first.wait(timeout=30)
        deadline = time.monotonic() + 60
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _alive(pid), "the server outlived the killed `kasauti serve`"
        assert not state_file.exists()  # it stopped cleanly
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_server_does_not_load_the_hub_import_stack(embedded_server):
    """Start-up time: the Hugging Face Hub import/export (HF datasets, pandas, pyarrow) stays unloaded."""
    maps = Path(f"/proc/{embedded_server.pid}/maps").read_text()
    assert "libarrow" not in maps and "pandas" not in maps
