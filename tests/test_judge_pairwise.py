"""The pairwise judge against the real loopback OpenAI-compatible server: both orders, faults,
SIGKILL and resume of the CLI, strict parsing, and position statistics under an injected bias."""

import json
import subprocess
from collections import Counter

import jsonschema
import numpy as np
import pandas as pd
import pytest

import rubrics
import studytables
from judge import JudgeConfig, Ledger, compare, dry_compare, export_comparisons, position_stats
from judge.pairwise import PairPlanner, parse_verdict, verdict_probs
from judge.parse import AnswerError, Token
from judge.prompts import hash_messages
from judge.testing import VERDICT_SHARES, FakeJudgeServer, Faults, expected_verdict
from sampling.pairs import boosted_pairs, make_pairs, write_pairs
from tests.judge_support import ROOT, cli_env, demo_sample, kasauti_cmd, make_study
from tests.test_judge_resume import judge_cfg, kill_after, ledger_keys

RS = rubrics.load_rubric_set("pariksha")
SAMPLE = demo_sample(4)  # 12 items: 18 pairs of responses to the same prompt
PAIRS = make_pairs(SAMPLE)
N_CALLS = len(PAIRS) * 2 * 3  # both orders x 3 metrics


def cfg(url, **kw):
    base = dict(name="fake", model="fake-judge", base_url=url, timeout_s=1.0, backoff_base_s=0.01, backoff_max_s=0.05,
                concurrency=8, batch_poll_s=0.02)
    return JudgeConfig(**{**base, **kw})


def expected(judge_cfg, bias=0.0, pairs=PAIRS, sample=SAMPLE, overall=False, boosted=None):
    """(pair_id, shown_order, criterion) -> (prompt hash, the server's outcome in model terms), from the rendered prompts."""
    planner = PairPlanner(pairs, sample, RS, judge_cfg, overall, boosted)
    out = {}
    for call in planner.plan({}, render=True):
        rec = planner.records[call.row]
        _, messages = planner.resolve(call)
        v = expected_verdict(messages[1]["content"], bias)
        outcome = "tie" if v == "tie" else "a" if (v == "A") == (rec["shown_order"] == "ab") else "b"
        out[(rec["pair_id"], rec["shown_order"], call.metrics[0].name)] = (hash_messages(messages), outcome)
    return out


def check_every_call_once(frame, exp):
    keys = list(zip(frame.pair_id, frame.shown_order, frame.criterion))
    assert sorted(keys) == sorted(exp) and len(set(keys)) == len(keys)  # every order of every pair once, nothing else
    ok, bad = frame[frame.judge_status == "ok"], frame[frame.judge_status != "ok"]
    assert ok.outcome.notna().all() and (ok.status == "submitted").all() and ok.error.isna().all()
    assert bad.outcome.isna().all() and (bad.status == "discarded").all() and (bad.error.str.len() > 0).all()
    for r in ok.itertuples():
        assert r.outcome == exp[(r.pair_id, r.shown_order, r.criterion)][1]  # mapped back to the models, never swapped


def test_both_orders_asked_exactly_once_each_and_outcomes_in_model_terms(tmp_path):
    with FakeJudgeServer() as srv:
        c = cfg(srv.url)
        exp = expected(c)
        s = compare(PAIRS, SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert (s.planned, s.ok, s.requests) == (N_CALLS, N_CALLS, N_CALLS)
        assert Counter(srv.counts) == Counter({ph: 1 for ph, _ in exp.values()})  # each order of each pair asked once
        s2 = compare(PAIRS, SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert (s2.cached, s2.requests, srv.total) == (N_CALLS, 0, N_CALLS)
        s3 = compare(PAIRS, SAMPLE, RS, cfg(srv.url, mode="per_metric"), tmp_path / "l.sqlite")  # the direct mode is not asked
        assert (s3.cached, s3.requests, srv.total) == (N_CALLS, 0, N_CALLS)
    frame = export_comparisons(tmp_path / "l.sqlite", tmp_path / "judge_comparisons.parquet")
    assert len(studytables.read(studytables.JUDGE_COMPARISONS, tmp_path / "judge_comparisons.parquet")) == N_CALLS
    check_every_call_once(frame, exp)
    assert (frame.groupby(["pair_id", "criterion"]).shown_order.agg(frozenset) == frozenset({"ab", "ba"})).all()
    assert set(frame.outcome) == {"a", "b", "tie"}
    probs = frame.probs.map(json.loads)
    assert all(abs(sum(p.values()) - 1) < 1e-9 and max(p, key=p.get) == o and max(p.values()) < 1  # from the alternatives
               for p, o in zip(probs, frame.outcome))
    assert Ledger(tmp_path / "l.sqlite").judgments().empty  # pairwise calls are not judgments


@pytest.mark.parametrize("backend", ["openai", "openai_batch"])
def test_faults_lose_or_duplicate_nothing(tmp_path, backend):
    faults = Faults(rate_429=0.15, rate_500=0.1, rate_drop=0.05, rate_malformed=0.1, rate_out_of_scale=0.1,
                    rate_missing_score=0.05, retry_after="0.05")
    with FakeJudgeServer(faults) as srv:
        c = cfg(srv.url, max_attempts=2, reask=1, backend=backend)
        exp = expected(c)
        s = compare(PAIRS, SAMPLE, RS, c, tmp_path / "l.sqlite")
        assert s.planned == N_CALLS and s.ok + s.failed + s.unparseable == N_CALLS
        assert s.failed > 0 and s.unparseable > 0 and s.reasks > 0, s
        assert srv.total == s.requests
        outcomes = Counter(e[2] for e in srv.events)
        assert all(outcomes[k] > 0 for k in ("429", "500", "drop")), outcomes
        frame = export_comparisons(tmp_path / "l.sqlite", tmp_path / "jc.parquet")
        assert frame.attempts.sum() == srv.total  # every request is accounted to one call
        check_every_call_once(frame, exp)
        assert frame[frame.judge_status == "unparseable"].raw_answer.notna().all()
        failed = {exp[k][0] for k in zip(frame.pair_id, frame.shown_order, frame.criterion)
                  if frame.set_index(["pair_id", "shown_order", "criterion"]).judge_status[k] == "failed"}
        srv.reset()
        s2 = compare(PAIRS, SAMPLE, RS, c, tmp_path / "l.sqlite")  # failed calls are called again, nothing else
        assert s2.retried == s.failed and s2.cached == N_CALLS - s.failed
        assert set(srv.counts) == failed
    check_every_call_once(export_comparisons(tmp_path / "l.sqlite", tmp_path / "jc.parquet"), exp)


def test_sigkill_of_the_cli_then_resume_requests_exactly_the_missing_calls(tmp_path):
    with FakeJudgeServer(Faults(delay_s=0.1)) as srv:
        study = make_study(tmp_path / "s", [judge_cfg(srv.url)], SAMPLE)
        out = subprocess.run(kasauti_cmd("judge", str(study), "--pairs"), cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 2 and "pairs.parquet: not found" in out.stderr and "Traceback" not in out.stderr
        write_pairs(study)
        ledger = study / "judge_ledger.sqlite"
        done = kill_after(ledger, 10, "judge", str(study), "--pairs")
        assert 10 <= len(done) < N_CALLS, len(done)
        first = Counter(srv.counts)
        srv.reset()
        out = subprocess.run(kasauti_cmd("judge", str(study), "--pairs"), cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        resumed = Counter(srv.counts)
        srv.reset()
        out3 = subprocess.run(kasauti_cmd("judge", str(study), "--pairs"), cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                              timeout=120)
        assert out3.returncode == 0 and srv.total == 0  # finished: zero calls
    every = ledger_keys(ledger)
    assert len(every) == N_CALLS
    missing = {ph for key, ph in every.items() if key not in done}
    assert set(resumed) == missing and all(n == 1 for n in resumed.values())  # exactly the missing calls, once each
    assert all(first[ph] == 1 for ph in done.values())
    assert f"{len(done)} cached, {N_CALLS - len(done)} ok" in out.stdout
    assert "position consistency" in out3.stdout and "first position won" in out3.stdout
    frame = pd.read_parquet(study / "judge_comparisons.parquet")
    check_every_call_once(frame, expected(JudgeConfig(**judge_cfg(srv.url))))
    assert (frame.judge_status == "ok").all() and not (study / "judgments.parquet").exists()


@pytest.mark.parametrize("text", [
    '{"reason": "r", "verdict": "a"}', '{"reason": "r", "verdict": "Tie"}', '{"reason": "r", "verdict": "A."}',
    '{"reason": "r", "verdict": 1}', '{"reason": "r", "verdict": null}', '{"reason": "r"}', '["A"]', 'A', '{"verdict": "A"',
    '{"reason": "r", "verdict": ["A"]}',
])
def test_parse_refuses_anything_but_exact_verdicts(text):
    with pytest.raises(AnswerError):
        parse_verdict(text)


def test_parse_and_prompt_answer_example_agree():
    assert parse_verdict('```json\n{"reason": "r", "verdict": "tie"}\n```') == ("tie", "r")
    assert parse_verdict('{"verdict": "B"}') == ("B", None)
    planner = PairPlanner(PAIRS, SAMPLE, RS, JudgeConfig(name="j", model="m"))
    _, messages = planner.resolve(planner.plan({})[0])
    system = messages[0]["content"]
    example = json.loads(system[system.index("{"):])
    assert parse_verdict(json.dumps(example))[0] in rubrics.VERDICTS  # what the prompt shows is what the parser accepts
    jsonschema.validate(example, rubrics.pair_response_schema())
    assert "## Response A" in messages[1]["content"] and '"tie"' in messages[1]["content"]


def test_without_schema_or_logprobs_the_verdicts_still_parse(tmp_path):
    with FakeJudgeServer(Faults(json_schema=False, logprobs=False)) as srv:
        c = cfg(srv.url)
        s = compare(PAIRS, SAMPLE, RS, c, tmp_path / "l.sqlite", overall=True)
        assert s.ok == s.planned == 2 * len(PAIRS) and s.reasks == 0
    frame = export_comparisons(tmp_path / "l.sqlite", tmp_path / "jc.parquet")
    check_every_call_once(frame, expected(c, overall=True))
    assert frame.probs.isna().all()


def test_verdict_probabilities_from_the_verdict_token():
    tokens = [Token('{"', -0.01), Token("reason", 0), Token('":"', 0), Token("A", 0), Token(' is', 0), Token('","', 0),
              Token("verdict", 0), Token('":"', 0),
              Token("B", np.log(0.6), (("B", np.log(0.6)), ("A", np.log(0.2)), ("t", np.log(0.1)), ("C", np.log(0.1)))),
              Token('"}', 0)]
    p = verdict_probs(tokens, "B")
    assert p == pytest.approx({"A": 2 / 9, "B": 6 / 9, "tie": 1 / 9})  # the A in the reason is not the verdict
    lead = [Token('{"verdict":', 0), Token(' "tie', np.log(0.5), ((' "tie', np.log(0.5)), (' "A', np.log(0.25)), ('"B', np.log(0.25))))]
    assert verdict_probs(lead, "tie") == pytest.approx({"A": 1 / 3, "B": 0.0, "tie": 2 / 3})  # only the same lead counts
    assert verdict_probs(tokens, "A") is None


def test_pairs_refer_to_sample_items():
    bad = PAIRS.copy()
    bad.loc[3, "item_b"] = "nope"
    with pytest.raises(ValueError, match=r"pairs.parquet: row 4, column 'item_b': expected an item_id of sample.parquet, got 'nope'"):
        PairPlanner(bad, SAMPLE, RS, JudgeConfig(name="j", model="m"))


def test_two_versions_of_one_item_from_the_boosted_table(tmp_path):
    from sampling.lengths import grapheme_length

    boosted = SAMPLE.assign(response=SAMPLE.response + " (revised)")
    pairs = boosted_pairs(SAMPLE, boosted)
    with FakeJudgeServer() as srv:
        c = cfg(srv.url)
        s = compare(pairs, SAMPLE, RS, c, tmp_path / "l.sqlite", overall=True, boosted=boosted)
        assert s.ok == s.planned == 2 * len(SAMPLE)
    frame = export_comparisons(tmp_path / "l.sqlite", tmp_path / "jc.parquet")
    check_every_call_once(frame, expected(c, 0.0, pairs, SAMPLE, overall=True, boosted=boosted))
    assert set(frame.model_a) == {"original"}
    assert (frame.length_b == frame.length_a + grapheme_length(" (revised)")).all()
    planner = PairPlanner(pairs, SAMPLE, RS, c, True, boosted)
    shown = [planner.resolve(call)[1][1]["content"] for call in planner.plan({})]
    assert all(p.count(" (revised)") == 1 for p in shown)  # one version of each item on each side


def test_pairs_repeated_for_annotators_are_counted_not_asked(tmp_path):
    pairs = make_pairs(SAMPLE, repeat_share=0.3)
    repeats = int(pairs.repeat_of.notna().sum())
    assert repeats > 0
    with FakeJudgeServer() as srv:
        s = compare(pairs, SAMPLE, RS, cfg(srv.url), tmp_path / "l.sqlite", overall=True)
    assert (s.repeats_skipped, s.planned, s.ok) == (repeats, 2 * (len(pairs) - repeats), 2 * (len(pairs) - repeats))
    assert set(export_comparisons(tmp_path / "l.sqlite", tmp_path / "jc.parquet").pair_id) == set(pairs.pair_id[pairs.repeat_of.isna()])


def test_a_bad_pair_is_named_by_its_pairs_row(tmp_path):
    bad = PAIRS.copy()
    bad.loc[2, "language"] = "xx-notalanguage"
    with pytest.raises(ValueError, match=r"^pairs.parquet row 3 \(pair '[0-9a-f]+'\), column language: "):
        compare(bad, SAMPLE, RS, JudgeConfig(name="j", model="m", base_url="http://127.0.0.1:9/v1"), tmp_path / "l.sqlite")


def test_cli_names_a_pair_whose_item_is_not_in_the_sample(tmp_path):
    study = make_study(tmp_path / "s", [judge_cfg("http://127.0.0.1:9/v1")], SAMPLE)
    studytables.write(studytables.PAIRS, PAIRS.assign(item_a=PAIRS.item_a.where(PAIRS.index != 4, "gone")), study / "pairs.parquet")
    out = subprocess.run(kasauti_cmd("judge", str(study), "--pairs"), cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "pairs.parquet: row 5, column 'item_a': expected an item_id of sample.parquet, got 'gone'" in " ".join(out.stderr.split())


def synthetic(n_prompts=150):
    """A sample of n_prompts prompts answered by two models (random texts), and its pairs."""
    rng = np.random.default_rng(7)
    rows = [{"item_id": f"p{i}|{m}", "language": "hi", "task": "chat", "prompt": f"prompt {i}", "source_model": m,
             "response": " ".join(rng.choice(["क", "ख", "ग", "घ"], 8))} for i in range(n_prompts) for m in ("m1", "m2")]
    sample = pd.DataFrame(rows)
    return sample, make_pairs(sample)


@pytest.mark.parametrize("bias", [0.0, 0.3])
def test_position_statistics_measure_the_injected_bias(tmp_path, bias):
    sample, pairs = synthetic()
    with FakeJudgeServer(Faults(position_bias=bias)) as srv:
        c = cfg(srv.url)
        s = compare(pairs, sample, RS, c, tmp_path / "l.sqlite", overall=True)
        assert s.ok == s.planned == 2 * len(pairs)
        d = dry_compare(pairs, sample, RS, c, tmp_path / "l.sqlite", overall=True)
        assert (d.planned, d.pending) == (2 * len(pairs), 0)
    frame = export_comparisons(tmp_path / "l.sqlite", tmp_path / "jc.parquet")
    exp = expected(c, bias, pairs, sample, overall=True)
    check_every_call_once(frame, exp)
    stats = position_stats(frame).set_index("criterion").loc["overall"]
    # independently: from the server's verdicts per prompt
    by_pair = pd.Series({k: o for k, (_, o) in exp.items()}).unstack(1)
    assert stats.n_repeated == len(pairs) and stats.n_consistent == (by_pair["ab"] == by_pair["ba"]).sum()
    decisive = [(order, o) for (_, order, _), (_, o) in exp.items() if o != "tie"]
    assert stats.n_decisive == len(decisive)
    assert stats.n_first_won == sum((o == "a") == (order == "ab") for order, o in decisive)
    # and near what the injected bias implies (true verdicts: 40% / 40% / 20% tie)
    tie = VERDICT_SHARES[2]
    assert stats.consistency == pytest.approx((1 - tie) * (1 - bias) + tie * (1 - bias) ** 2, abs=0.06)
    rate = ((1 - tie) * (1 + bias) + tie * 2 * bias) / ((1 - tie) * 2 + tie * 2 * bias)
    assert stats.first_win_rate == pytest.approx(rate, abs=0.05)
    if bias == 0:
        assert stats.consistency == 1.0 and stats.first_win_rate == 0.5


def test_cli_boosted_vs_original_judged_in_both_orders_with_the_win_rate(tmp_path):
    """`kasauti pairs --boosted` then `kasauti judge --pairs`: the judge sees the original (sample) and the boosted
    version (boosted.parquet) of each item in both orders; the CLI prints the win rate of boosted over original."""
    from reports.pairwise.winrate import win_rate
    from tests.test_pairs import boosted_of

    with FakeJudgeServer() as srv:
        study = make_study(tmp_path / "s", [judge_cfg(srv.url)], SAMPLE)
        versions = boosted_of(SAMPLE).assign(prompt=SAMPLE["prompt"].to_numpy(), context="",
                                             response=[f"{r} (revised)" for r in SAMPLE["response"]])
        studytables.write(studytables.BOOSTED, versions, study / "boosted.parquet")
        made = subprocess.run(kasauti_cmd("pairs", str(study), "--boosted"), cwd=ROOT, env=cli_env(), capture_output=True,
                              text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        assert f"{len(SAMPLE)} pairs and 0 repeats" in " ".join(made.stdout.split())
        out = subprocess.run(kasauti_cmd("judge", str(study), "--pairs"), cwd=ROOT, env=cli_env(), capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    pairs = studytables.read(studytables.PAIRS, study / "pairs.parquet")
    frame = studytables.read(studytables.JUDGE_COMPARISONS, study / "judge_comparisons.parquet")
    planner = PairPlanner(pairs, SAMPLE, RS, JudgeConfig(**judge_cfg(srv.url)), boosted=versions)
    shown = {(r["pair_id"], r["shown_order"]): (r["first"], r["second"]) for r in planner.records}
    revised = dict(zip(versions["item_id"], versions["response"]))
    for p in pairs.itertuples():  # the boosted text from boosted.parquet, on the side the order says
        assert shown[(p.pair_id, "ab")][1] == shown[(p.pair_id, "ba")][0] == revised[p.item_a]
    check_every_call_once(frame, expected(JudgeConfig(**judge_cfg(srv.url)), pairs=pairs, sample=SAMPLE, boosted=versions))
    table = win_rate(frame, "boosted", "original")
    text = " ".join(out.stdout.split())
    assert "position consistency" in text
    for r in table.itertuples():
        assert (f"{r.raters} / {r.criterion} / {r.language}: boosted over original win rate {r.win_rate:.3f} "
                f"(95% CI {r.ci_low:.3f}-{r.ci_high:.3f}; ties half) on {r.n_comparisons} comparisons") in text
    assert set(table["language"]) == {"all", *SAMPLE["language"]}
