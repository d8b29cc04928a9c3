"""The judge against a real loopback OpenAI-compatible server injecting faults."""

import json
from collections import Counter

import pandas as pd
import pytest
import yaml

import rubrics
from judge import JudgeConfig, Ledger, run_judge
from judge.prompts import Planner
from judge.testing import FakeJudgeServer, Faults, expected_score, rubric_metrics
from tests.judge_support import demo_sample

RS = rubrics.load_rubric_set("pariksha")
SAMPLE = demo_sample(4)  # 12 items, 3 languages


def cfg(url, **kw):
    base = dict(name="fake", model="fake-judge", base_url=url, timeout_s=1.0, backoff_base_s=0.01, backoff_max_s=0.05, concurrency=8,
                batch_poll_s=0.02)
    return JudgeConfig(**{**base, **kw})


@pytest.fixture(params=["openai", "openai_batch"])
def backend(request):
    """The backends that speak to an endpoint: each passes the same fault tests."""
    return request.param


def expected_scores(judge_cfg, rubric=RS, sample=SAMPLE):
    """(item, metric) -> the server's deterministic score, computed from the rendered prompts."""
    planner = Planner(sample, rubric, judge_cfg)
    out = {}
    for row, metrics, _ in planner.fingerprints():
        user = planner.messages(row, metrics)[1]["content"]
        for name, levels in rubric_metrics(user).items():
            out[(planner.records[row]["item_id"], name)] = expected_score(user, name, levels)
    return out


def check_every_call_once(df, judge_cfg, rubric=RS, sample=SAMPLE):
    n_metrics = len(rubric.families[0].metrics)
    assert len(df) == len(sample) * n_metrics * judge_cfg.repeats
    assert not df.duplicated(["judge", "item_id", "metric", "repeat"]).any()
    assert set(df["status"]) <= {"ok", "failed", "unparseable"}
    ok, bad = df[df.status == "ok"], df[df.status != "ok"]
    assert ok["score"].notna().all() and ok["human_score"].notna().all() and ok["error"].isna().all()
    assert bad["score"].isna().all() and bad["human_score"].isna().all()
    assert (bad["error"].str.len() > 0).all()
    assert bad[bad.status == "unparseable"]["raw_answer"].notna().all()
    exp = expected_scores(judge_cfg, rubric, sample)
    for r in ok.itertuples():
        assert r.score == exp[(r.item_id, r.metric)]  # never coerced, never swapped


def test_every_item_scored_or_failed_with_reason(tmp_path, backend):
    faults = Faults(rate_429=0.15, rate_500=0.1, rate_slow=0.05, rate_drop=0.05, rate_malformed=0.1,
                    rate_out_of_scale=0.1, rate_missing_score=0.05, slow_s=2.0, retry_after="0.1")
    with FakeJudgeServer(faults) as srv:
        c = cfg(srv.url, mode="per_metric", repeats=2, max_attempts=2, timeout_s=0.5, backend=backend)
        s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert s.planned == len(SAMPLE) * 3 * 2 and s.cached == 0
        assert s.ok + s.failed + s.unparseable == s.planned
        assert srv.total == s.requests
        outcomes = Counter(e[2] for e in srv.events)
        assert all(outcomes[k] > 0 for k in ("429", "500", "slow", "drop")), outcomes
        before = srv.total
        s2 = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite", retry_failed=False)
        assert (s2.cached, s2.skipped_failed, s2.requests, srv.total) == (s.planned - s.failed, s.failed, 0, before)  # zero calls
        calls = Ledger(tmp_path / "l.sqlite").judgments().drop_duplicates(["item_id", "metric", "repeat"])
        assert calls.attempts.sum() == before  # every request is accounted to one call
    df = Ledger(tmp_path / "l.sqlite").judgments()
    check_every_call_once(df, c)
    statuses = Counter(df.status)
    assert statuses["ok"] > 0 and statuses["failed"] > 0 and statuses["unparseable"] > 0, statuses
    failed = df[df.status == "failed"]
    if backend == "openai":
        assert failed["error"].str.contains("gave up after 2 attempts").all()
        assert (failed["attempts"] >= 2).all()
    else:  # a batch request is not retried inside the batch: the error file's reason is recorded
        assert failed["error"].str.match(r"HTTP (429|500): ").all()


def test_retry_after_honoured(tmp_path):
    with FakeJudgeServer(Faults(rate_429=0.4, retry_after="0.3")) as srv:
        c = cfg(srv.url, mode="per_metric", max_attempts=10, backoff_base_s=0.0, backoff_max_s=0.0)
        s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert s.ok == s.planned
        events = list(srv.events)
    last, waits = {}, []
    for ph, _, outcome, t in events:  # one call per prompt hash here (one repeat, per metric)
        if ph in last and last[ph][0] == "429":
            waits.append(t - last[ph][1])
        last[ph] = (outcome, t)
    assert waits and min(waits) >= 0.3 - 1e-3  # backoff is 0: only Retry-After made it wait


def test_out_of_scale_is_reasked_then_unparseable_never_coerced(tmp_path, backend):
    with FakeJudgeServer(Faults(rate_out_of_scale=1.0)) as srv:
        c = cfg(srv.url, backend=backend, reask=1)
        s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert s.requests == 2 * len(SAMPLE) and s.reasks == len(SAMPLE)
        assert sorted(Counter(e[1] for e in srv.events).items()) == [(2, len(SAMPLE)), (4, len(SAMPLE))]  # re-ask carries the answer
    df = Ledger(tmp_path / "l.sqlite").judgments()
    check_every_call_once(df, c)
    first = RS.families[0].metrics[0].name  # the server puts the bad score on the first metric
    bad = df[df.metric == first]
    assert (bad.status == "unparseable").all() and bad.error.str.contains("not on the scale").all()
    assert bad.raw_answer.str.contains('"score": 7').all()
    assert (df[df.metric != first].status == "ok").all()
    assert (df.attempts == 2).all()


def test_malformed_without_reask(tmp_path, backend):
    with FakeJudgeServer(Faults(rate_malformed=1.0)) as srv:
        c = cfg(srv.url, backend=backend, reask=0, mode="per_metric")
        s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert s.requests == s.planned == s.unparseable
    df = Ledger(tmp_path / "l.sqlite").judgments()
    assert (df.status == "unparseable").all() and df.error.str.contains("not valid JSON").all()
    assert (df.attempts == 1).all()


@pytest.mark.parametrize("logprobs", [True, False])
def test_logprobs_present_or_absent(tmp_path, logprobs, backend):
    with FakeJudgeServer(Faults(logprobs=logprobs)) as srv:
        c = cfg(srv.url, backend=backend, top_logprobs=5)
        run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
    df = Ledger(tmp_path / "l.sqlite").judgments()
    check_every_call_once(df, c)
    assert (df.status == "ok").all()
    if not logprobs:
        assert df.probs.isna().all() and df.expected_score.isna().all() and df.entropy.isna().all()
        return
    assert df.probs.notna().all()
    for r in df.itertuples():
        p = {int(k): v for k, v in json.loads(r.probs).items()}
        levels = RS.families[0].metric(r.metric).judge.scale.values
        assert sorted(p) == levels and sum(p.values()) == pytest.approx(1.0)
        assert max(p, key=p.get) == r.score  # the server makes the answered level the likeliest
        assert r.expected_score == pytest.approx(sum(k * v for k, v in p.items()))
        assert 0 < r.entropy <= __import__("math").log(len(levels)) + 1e-9


def test_json_schema_refused_falls_back(tmp_path, backend):
    with FakeJudgeServer(Faults(json_schema=False)) as srv:
        c = cfg(srv.url, backend=backend)
        s = run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert s.ok == len(SAMPLE)
    df = Ledger(tmp_path / "l.sqlite").judgments()
    assert {json.loads(p)["response_format_used"] for p in df.params} == {"json_object"}


def test_judge_scale_mapped_to_human_scale(tmp_path, backend):
    raw = yaml.safe_load(open(rubrics.load.resolve("pariksha"), encoding="utf-8"))
    la = raw["families"][0]["metrics"][0]
    la["judge"]["scale"] = {"levels": [{"value": v, "label": f"l{v}", "anchor": f"a{v}"} for v in range(1, 6)]}
    la["judge"]["to_human"] = {1: 0, 2: 0, 3: 1, 4: 2, 5: 2}
    raw["version"] = "1.0-five"
    rs = rubrics.RubricSet.model_validate(raw)
    with FakeJudgeServer() as srv:
        c = cfg(srv.url, backend=backend)
        run_judge(SAMPLE, rs, c, tmp_path / "l.sqlite")
    df = Ledger(tmp_path / "l.sqlite").judgments()
    check_every_call_once(df, c, rs)
    la_rows = df[df.metric == la["name"]]
    assert set(la_rows.score) <= {1, 2, 3, 4, 5}
    assert (la_rows.human_score == la_rows.score.map(la["judge"]["to_human"])).all()
    assert (df.rubric_version == "1.0-five").all()


def test_request_rate_limit(tmp_path):
    with FakeJudgeServer() as srv:
        c = cfg(srv.url, mode="per_metric", requests_per_minute=1200, concurrency=16)  # 20 per second
        run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        times = sorted(e[3] for e in srv.events)
    assert len(times) == 36
    for i, t in enumerate(times):  # any one-second window holds at most 20 (+1 burst) requests
        assert sum(1 for u in times[i:] if u - t < 1.0) <= 21


def test_wrong_endpoint_stops_the_run_with_a_clear_error(tmp_path, backend):
    from judge.backends import FatalError

    with FakeJudgeServer() as srv:
        c = cfg(srv.url.removesuffix("/v1"), backend=backend)  # 404 for every call: no point going on
        with pytest.raises(FatalError, match="HTTP 404"):
            run_judge(SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert srv.total == 0


def test_config_keeps_secrets_out(monkeypatch):
    with pytest.raises(ValueError, match="api_key"):
        JudgeConfig(name="j", model="m", api_key="sk-123")
    with pytest.raises(ValueError, match="secrets"):
        JudgeConfig(name="j", model="m", extra_body={"api_key": "sk-123"})
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(ValueError, match="set the environment variable MY_KEY"):
        JudgeConfig(name="j", model="m", api_key_env="MY_KEY").api_key()  # api.openai.com needs a key
    monkeypatch.setenv("MY_KEY", "sk-from-env")
    assert JudgeConfig(name="j", model="m", api_key_env="MY_KEY").api_key() == "sk-from-env"


def test_multi_turn_conversation_rendered_in_order_with_language(tmp_path):
    sample = SAMPLE.head(2).copy()
    turns = [{"role": "user", "content": "প্রথম প্রশ্ন"}, {"role": "assistant", "content": "প্রথম উত্তর"},
             {"role": "user", "content": "দ্বিতীয় প্রশ্ন"}]
    sample["conversation"] = [json.dumps(turns, ensure_ascii=False), None]
    planner = Planner(sample, RS, cfg("http://unused/v1"))
    user = planner.messages(0, RS.families[0].metrics)[1]["content"]
    positions = [user.index(f"[{t['role']}]\n{t['content']}") for t in turns]
    assert positions == sorted(positions) and user.index("দ্বিতীয় প্রশ্ন") < user.index("## Response to evaluate")
    assert "Language: Bangla" in user
    with FakeJudgeServer() as srv:
        s = run_judge(sample, RS, cfg(srv.url), tmp_path / "l.sqlite")
    assert s.ok == 2


def test_server_runs_standalone():
    import subprocess
    import sys

    import openai

    from tests.judge_support import ROOT, cli_env

    proc = subprocess.Popen([sys.executable, "-m", "judge.testing", "--port", "0"], cwd=ROOT, env=cli_env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        msg = "### hallucination: Hallucination\nScale:\n- 0 (no): a\n- 1 (yes): b\n"
        r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": msg}], logprobs=True, top_logprobs=3)
        assert json.loads(r.choices[0].message.content)["hallucination"]["score"] == expected_score(msg, "hallucination", [0, 1])
        assert r.choices[0].logprobs.content
    finally:
        proc.terminate()
        proc.wait(10)


def test_bad_sample_rows_are_named(tmp_path):
    bad = SAMPLE.head(3).copy()
    bad.loc[2, "language"] = "xx-not-a-code!"
    with pytest.raises(ValueError, match=r"sample.parquet row 3 .* column language"):  # rows count from 1
        run_judge(bad, RS, cfg("http://127.0.0.1:9/v1"), tmp_path / "l.sqlite")
    twice = pd.concat([SAMPLE.head(3), SAMPLE.iloc[[1]]], ignore_index=True)
    with pytest.raises(ValueError, match=rf"sample.parquet rows 2 and 4, column item_id: {SAMPLE.item_id[1]!r} appears more than once"):
        run_judge(twice, RS, cfg("http://127.0.0.1:9/v1"), tmp_path / "l.sqlite")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['response'\]"):
        run_judge(SAMPLE.drop(columns="response"), RS, cfg("http://127.0.0.1:9/v1"), tmp_path / "l.sqlite")
