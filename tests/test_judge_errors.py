"""`kasauti judge` error handling (issue 12): what the user sees when the endpoint, key or config is wrong."""

import socket
import sqlite3
import subprocess

import pandas as pd
import pytest
import yaml

import rubrics
from judge import JudgeConfig, run_judge
from judge.testing import FakeJudgeServer, Faults
from tests.judge_support import ROOT, cli_env, demo_sample, kasauti_cmd, make_study

RS = rubrics.load_rubric_set("pariksha")
SAMPLE = demo_sample(2)  # 6 items


def judge_cfg(url, **kw):
    return {"name": "fake", "model": "fake-judge", "base_url": url, "concurrency": 4, "backoff_base_s": 0.01,
            "backoff_max_s": 0.05, "timeout_s": 5, **kw}


def kasauti(*args, env=None):
    return subprocess.run(kasauti_cmd(*args), cwd=ROOT, env=env or cli_env(), capture_output=True, text=True, timeout=120)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ledger_statuses(path):
    with sqlite3.connect(path) as db:
        return [s for (s,) in db.execute("SELECT status FROM calls")]


@pytest.fixture(params=["openai", "openai_batch"])
def backend(request):
    return request.param


def test_unreachable_endpoint_stops_early_naming_the_url(tmp_path, backend):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    study = make_study(tmp_path / "s", [judge_cfg(url, backend=backend)], SAMPLE)
    out = kasauti("judge", str(study))
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"cannot reach {url}" in out.stderr and "base_url" in out.stderr
    assert "Traceback" not in out.stderr
    ledger = study / "judge_ledger.sqlite"
    assert not ledger.exists() or ledger_statuses(ledger) == []  # nothing recorded as failed


def test_failed_calls_exit_nonzero_and_a_rerun_retries_them(tmp_path, backend):
    with FakeJudgeServer(Faults(rate_500=1.0)) as srv:
        study = make_study(tmp_path / "s", [judge_cfg(srv.url, max_attempts=2, backend=backend, batch_poll_s=0.02)], SAMPLE)
        out = kasauti("judge", str(study))
        assert out.returncode == 1, out.stdout + out.stderr
        assert "6 failed" in out.stdout and "6 calls failed" in out.stderr and f"then run `kasauti judge {study}` again" in out.stderr
        assert ledger_statuses(study / "judge_ledger.sqlite") == ["failed"] * 6
        srv.faults = Faults()
        srv.reset()
        out = kasauti("judge", str(study), "--skip-failed")
        assert out.returncode == 1 and srv.total == 0
        assert "0 cached, 6 failed earlier and skipped" in out.stdout and "without --skip-failed" in out.stderr
        out = kasauti("judge", str(study))  # the endpoint works again: the failed calls are retried by default
        assert out.returncode == 0, out.stdout + out.stderr
        assert "0 cached, 6 failed earlier and retried, 6 ok" in out.stdout and srv.total == 6
    df = pd.read_parquet(study / "judgments.parquet")
    assert len(df) == 6 * 3 and (df.status == "ok").all()


def test_unset_key_variable_warns_or_fails_for_openai(tmp_path):
    url = "http://judge.internal.example/v1"  # another machine: the dry run calls nothing
    study = make_study(tmp_path / "s", [judge_cfg(url, api_key_env="MY_JUDGE_KEY")], SAMPLE)
    out = kasauti("judge", str(study), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "warning:" in out.stderr and "MY_JUDGE_KEY is not set" in out.stderr and url in out.stderr
    with FakeJudgeServer() as srv:  # a server on this machine usually needs no key: no warning
        study = make_study(tmp_path / "l", [judge_cfg(srv.url, api_key_env="MY_JUDGE_KEY")], SAMPLE)
        out = kasauti("judge", str(study), "--limit", "1")
        assert out.returncode == 0 and "warning" not in out.stderr, out.stderr
    study = make_study(tmp_path / "o", [judge_cfg("https://api.openai.com/v1", api_key_env="MY_JUDGE_KEY")], SAMPLE)
    out = kasauti("judge", str(study))
    assert out.returncode == 2 and "set the environment variable MY_JUDGE_KEY" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_literal_api_key_in_the_study_is_refused_without_echoing_it(tmp_path):
    study = make_study(tmp_path / "s", [judge_cfg("http://127.0.0.1:9/v1", api_key="sk-very-secret")], SAMPLE)
    out = kasauti("judge", str(study))
    assert out.returncode == 2
    assert "judges.0: api_key: keys go in the environment: use api_key_env" in out.stderr
    assert "sk-very-secret" not in out.stdout + out.stderr
    assert "Extra inputs" not in out.stderr


def test_error_summary_keeps_the_whole_reason(tmp_path):
    with FakeJudgeServer(Faults(rate_out_of_scale=1.0)) as srv:
        s = run_judge(SAMPLE, RS, JudgeConfig(**judge_cfg(srv.url, reask=0)), tmp_path / "l.sqlite")
    first = RS.families[0].metrics[0]
    bad = max(first.judge.scale.values) + 5
    assert s.errors == {f"metric {first.name!r}: score {bad} is not on the scale {first.judge.scale.values}": len(SAMPLE)}


def test_answer_in_the_form_the_prompt_shows(tmp_path):
    """A server without schema-constrained output answers in the form the prompt's example shows."""
    system = rubrics.judge_messages(RS.families[0].metrics, {"task": "x", "prompt": "p", "response": "r"}, "Tamil")[0]["content"]
    form = yaml.safe_load(system[system.index("{"):])  # the JSON answer example (YAML reads JSON)
    assert all(type(part["score"]) is int for part in form.values())
    for fmt in ("auto", "none"):
        with FakeJudgeServer(Faults(json_schema=False)) as srv:
            s = run_judge(SAMPLE, RS, JudgeConfig(**judge_cfg(srv.url, response_format=fmt)), tmp_path / f"{fmt}.sqlite")
        assert (s.ok, s.unparseable, s.reasks) == (len(SAMPLE), 0, 0), (fmt, s)


def test_unreadable_files_and_missing_backend_are_one_line_errors(tmp_path):
    url = "http://127.0.0.1:9/v1"
    study = make_study(tmp_path / "a", [judge_cfg(url)], SAMPLE)
    (study / "sample.parquet").write_text("not parquet")
    out = kasauti("judge", str(study))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert f"{study / 'sample.parquet'}: not a Parquet file" in out.stderr and "kasauti sample" in out.stderr

    study = make_study(tmp_path / "b", [judge_cfg(url)], SAMPLE)
    (study / "judge_ledger.sqlite").write_bytes(b"garbage" * 200)
    out = kasauti("judge", str(study))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert f"{study / 'judge_ledger.sqlite'}: not a judge ledger" in out.stderr and "move it away" in out.stderr

    study = make_study(tmp_path / "c", [{"name": "local", "model": "m", "backend": "vllm"}], SAMPLE)
    env = cli_env() | {"PYTHONPATH": f"{tmp_path / 'novllm'}:{ROOT}"}
    (tmp_path / "novllm").mkdir()
    (tmp_path / "novllm" / "vllm.py").write_text("raise ImportError('no vllm here')\n")
    out = kasauti("judge", str(study), env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "pip install 'kasauti[vllm]'" in out.stderr
