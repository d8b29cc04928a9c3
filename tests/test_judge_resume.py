"""`kasauti judge` as a real subprocess: dry run, a full run, and SIGKILL mid-run then resume."""

import signal
import sqlite3
import subprocess
import time
from collections import Counter

import pandas as pd
import pytest

from judge.ledger import COLUMNS
from judge.testing import FakeJudgeServer, Faults
from tests.judge_support import ROOT, cli_env, kasauti_cmd, make_study


def judge_cfg(url, **kw):
    return {"name": "fake", "model": "fake-judge", "base_url": url, "concurrency": 4, "backoff_base_s": 0.01, **kw}


def ledger_keys(path):
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(path) as db:
            return dict(db.execute("SELECT key, prompt_hash FROM calls"))
    except sqlite3.OperationalError:  # created but no table yet
        return {}


def kill_after(ledger, n: int, *args: str) -> dict:
    """Run `kasauti *args`, SIGKILL it once the ledger holds >= n calls; the ledger's calls then."""
    proc = subprocess.Popen(kasauti_cmd(*args), cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(ledger_keys(ledger)) < n and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    time.sleep(0.3)  # let the requests in flight at the kill reach the server
    assert proc.returncode == -signal.SIGKILL
    return ledger_keys(ledger)


@pytest.mark.parametrize("backend", ["openai", "openai_batch"])
def test_dry_run_then_run_then_rerun(tmp_path, backend):
    with FakeJudgeServer() as srv:
        study = make_study(tmp_path / "s", [judge_cfg(srv.url, price_per_1k_prompt_tokens=0.5, backend=backend, batch_poll_s=0.02)])
        out = subprocess.run(kasauti_cmd("judge", str(study), "--dry-run"), cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "12 calls planned, 0 in the ledger, 12 would be made" in out.stdout
        assert "Language: Odia" in out.stdout or "Language: Bangla" in out.stdout
        assert srv.total == 0 and not (study / "judgments.parquet").exists()
        out = subprocess.run(kasauti_cmd("judge", str(study), "--limit", "5"), cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert srv.total == 5 and "5 ok" in out.stdout and "cost $" in out.stdout
        df = pd.read_parquet(study / "judgments.parquet")
        assert list(df.columns) == COLUMNS and len(df) == 5 * 3 and (df.status == "ok").all()
        out = subprocess.run(kasauti_cmd("judge", str(study)), cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert srv.total == 12 and "5 cached, 7 ok" in out.stdout
        out = subprocess.run(kasauti_cmd("judge", str(study), "--judge", "nobody"), cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and "unknown judge" in out.stderr


def test_sigkill_mid_run_resumes_with_exactly_the_missing_calls(tmp_path):
    with FakeJudgeServer(Faults(delay_s=0.15)) as srv:
        study = make_study(tmp_path / "s", [judge_cfg(srv.url, mode="per_metric")])  # 12 items x 3 = 36 calls
        ledger = study / "judge_ledger.sqlite"
        done = kill_after(ledger, 10, "judge", str(study))
        assert 10 <= len(done) < 36, len(done)
        first = Counter(srv.counts)
        srv.reset()
        out = subprocess.run(kasauti_cmd("judge", str(study)), cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        resumed = Counter(srv.counts)
        srv.reset()
        out3 = subprocess.run(kasauti_cmd("judge", str(study)), cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert out3.returncode == 0 and srv.total == 0  # finished: zero calls
    every = ledger_keys(ledger)
    assert len(every) == 36
    missing = {ph for key, ph in every.items() if key not in done}
    assert set(resumed) == missing and all(n == 1 for n in resumed.values())  # exactly the missing calls, once each
    assert all(first[ph] == 1 for ph in done.values())
    assert f"{len(done)} cached, {36 - len(done)} ok" in out.stdout
    df = pd.read_parquet(study / "judgments.parquet")
    assert len(df) == 36 and (df.status == "ok").all() and not df.duplicated(["item_id", "metric", "repeat"]).any()
