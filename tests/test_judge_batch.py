"""The OpenAI Batch API backend against the loopback server's /v1/files and /v1/batches, and the
backend registry. The fault tests shared with the chat backend are in test_judge_faults.py."""

import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter

import pandas as pd
import pytest

import rubrics
from judge import JudgeConfig, Ledger, run_judge
from judge.backends import Completion, Result, register_backend
from judge.testing import FakeJudgeServer, Faults
from tests.judge_support import ROOT, cli_env, demo_sample, kasauti_cmd, make_study

from .test_judge_faults import check_every_call_once

RS = rubrics.load_rubric_set("pariksha")
SAMPLE = demo_sample(4)  # 12 items


def cfg(url, **kw):
    return JudgeConfig(**{"name": "batch", "model": "fake-judge", "base_url": url, "backend": "openai_batch", "batch_poll_s": 0.02,
                          "backoff_base_s": 0.01, "backoff_max_s": 0.05, **kw})


def test_errored_and_expired_requests_slow_batch_and_failing_polls(tmp_path):
    faults = Faults(rate_500=0.2, rate_expired=0.25, rate_poll_500=0.3, batch_delay_s=0.5)
    with FakeJudgeServer(faults) as srv:
        c = cfg(srv.url, mode="per_metric", extra_body={"service_tier": "flex"})
        s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        (batch,) = srv.batches.values()  # one batch for every call (no re-asks were needed)
        assert batch["status"] == "expired" and batch["_polls"] > 3  # polled while it ran, through the 500s
        lines = [json.loads(x) for x in srv.files[batch["input_file_id"]].decode().splitlines()]
    assert len(lines) == s.planned == 36 and len({x["custom_id"] for x in lines}) == 36
    body = lines[0]["body"]
    assert (lines[0]["url"], lines[0]["method"], body["model"]) == ("/v1/chat/completions", "POST", "fake-judge")
    assert body["response_format"]["type"] == "json_schema" and body["logprobs"] and body["service_tier"] == "flex"
    df = Ledger(tmp_path / "l.sqlite").judgments()
    check_every_call_once(df, c)
    errors = Counter(e.split(":")[0] for e in df[df.status == "failed"].error)
    assert set(errors) == {"HTTP 500", "batch_expired"} and s.failed + s.ok == 36, errors
    assert srv.total == s.requests - errors["batch_expired"]  # expired requests never ran
    with Ledger(tmp_path / "l.sqlite") as led:
        (row,) = led.db.execute("SELECT batch_id, input_file_id, request_ids FROM batches").fetchall()
    assert row[:2] == (batch["id"], batch["input_file_id"]) and sorted(json.loads(row[2])) == sorted(x["custom_id"] for x in lines)


def test_failed_batch_fails_every_call_and_a_rerun_submits_a_new_one(tmp_path):
    with FakeJudgeServer(Faults(batch_fail=True)) as srv:
        c = cfg(srv.url)
        s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert s.failed == len(SAMPLE) and srv.total == 0
        df = Ledger(tmp_path / "l.sqlite").judgments()
        assert (df.error == "batch batch_1 failed: the input file could not be validated: no answer for this request").all()
        srv.faults = Faults()
        s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert (s.retried, s.ok, len(srv.batches)) == (len(SAMPLE), len(SAMPLE), 2)
    check_every_call_once(Ledger(tmp_path / "l.sqlite").judgments(), c)


def test_sigkill_while_the_batch_runs_resumes_the_same_batch(tmp_path):
    with FakeJudgeServer(Faults(batch_delay_s=4.0, rate_out_of_scale=0.2)) as srv:
        judge = {"name": "batch", "model": "fake-judge", "base_url": srv.url, "backend": "openai_batch", "batch_poll_s": 0.05,
                 "mode": "per_metric"}
        study = make_study(tmp_path / "s", [judge])  # 12 items x 3 metrics = 36 calls
        ledger = study / "judge_ledger.sqlite"
        proc = subprocess.Popen(kasauti_cmd("judge", str(study)), cwd=ROOT, env=cli_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not srv.batches and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(0.3)  # the batch id reaches the ledger
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL and len(srv.batches) == 1 and srv.total == 0
        with sqlite3.connect(ledger) as db:
            assert db.execute("SELECT batch_id FROM batches").fetchall() == [("batch_1",)]
            assert db.execute("SELECT count(*) FROM calls").fetchone() == (0,)
        out = subprocess.run(kasauti_cmd("judge", str(study)), cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert srv.batches["batch_1"]["status"] == "completed"
        sent = Counter(json.loads(x)["custom_id"] for b in srv.batches.values() for x in srv.files[b["input_file_id"]].splitlines())
        assert all(n == 1 for n in sent.values()) and srv.total == sum(sent.values())  # no request sent twice
        assert sum(1 for i in sent if i.endswith(":0")) == 36 and len(srv.batches) == 1 + (len(sent) > 36)  # re-asks: one follow-up
    df = pd.read_parquet(study / "judgments.parquet")
    assert len(df) == 36 * 1 and not df.duplicated(["item_id", "metric", "repeat"]).any()
    assert set(df.status) <= {"ok", "unparseable"} and (df.status == "ok").sum() > 0


@register_backend("lowest")
class LowestScore:
    """A backend outside the package: every metric gets its lowest level (proves the registry seam)."""

    def __init__(self, cfg, ledger):
        self.seen = []

    async def run(self, queue, deliver):
        while reqs := await queue.take(3):
            for r in reqs:
                props = r.schema["properties"]
                text = json.dumps({m: {"reason": "r", "score": p["properties"]["score"]["enum"][0]} for m, p in props.items()})
                deliver(Result(r, Completion(text, None, 1, 1, "json_schema"), None))

    async def aclose(self):
        pass


def test_a_registered_backend_runs_through_the_same_runner(tmp_path):
    c = JudgeConfig(name="low", model="m", backend="lowest")
    s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
    assert (s.ok, s.requests) == (len(SAMPLE), len(SAMPLE))
    df = Ledger(tmp_path / "l.sqlite").judgments()
    assert (df.score == 0).all() and (df.status == "ok").all()
    with pytest.raises(ValueError, match="unknown backend 'openai-batch': did you mean 'openai_batch'"):
        JudgeConfig(name="x", model="m", backend="openai-batch")


def test_unknown_backend_is_named_with_a_suggestion_by_the_cli(tmp_path):
    study = make_study(tmp_path / "s", [{"name": "j", "model": "m", "backend": "opanai"}], demo_sample(1))
    out = subprocess.run(kasauti_cmd("judge", str(study)), cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "judges.0.backend" in out.stderr and "did you mean 'openai'" in out.stderr, out.stderr


def test_a_recorded_batch_the_provider_no_longer_has_fails_its_calls_then_is_replaced(tmp_path):
    with FakeJudgeServer() as srv:
        c = cfg(srv.url)
        with Ledger(tmp_path / "l.sqlite") as led:  # a run killed after submitting, against another server
            from judge.runner import JudgeRun

            ids = [f"{call.key}:0" for call in JudgeRun(SAMPLE, RS, c, led).pending(render=True)]
            led.record_batch(c.name, "batch_elsewhere", "file-elsewhere", ids, "2026-01-01T00:00:00+00:00")
        s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert (s.failed, srv.total, len(srv.batches)) == (len(SAMPLE), 0, 0)
        assert Ledger(tmp_path / "l.sqlite").judgments().error.str.startswith(f"batch batch_elsewhere: not found at {srv.url}").all()
        s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")  # its calls are in the ledger now: a new batch
        assert (s.retried, s.ok, len(srv.batches)) == (len(SAMPLE), len(SAMPLE), 1)
