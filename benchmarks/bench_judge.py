"""Judge throughput against the loopback server (20 ms answers) and resume speed.

    python benchmarks/bench_judge.py [--quick] [--rounds 3] [--concurrency 1,16,64,256] [--no-resume]

1. Throughput at concurrency 1, 16, 64, 256: `run_judge` (planning, prompt rendering, retry
   machinery, parsing, logprob distributions, one SQLite commit per answer) against a bare loop
   of `openai.AsyncOpenAI` calls sending the same, pre-rendered requests with the same
   concurrency, in this process, against the same server (a separate process).
   ratio = judge calls/s / bare calls/s over the whole run_judge call; "call phase" leaves out
   planning (first request sent to last answer recorded, from the ledger's timestamps); "fixed ms"
   is the run's time outside its call phase (opening and creating the ledger, planning, creating
   the HTTP client, closing), which the bare loop's clock does not include (its client is created
   before the clock starts).
   CPU ms/call is this process's CPU time per call (the server runs in another process); the
   CPU ratio (bare / judge) is the client-overhead figure least disturbed by other load on a
   shared machine.
2. Resume: time for `run_judge` to skip 100,000 cached judgments (goal under 5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rubrics  # noqa: E402
from judge import JudgeConfig, Ledger, run_judge  # noqa: E402
from judge.backends import OpenAIBackend  # noqa: E402
from judge.runner import JudgeRun, now  # noqa: E402

RS = rubrics.load_rubric_set("pariksha")


def synthetic_sample(n: int) -> pd.DataFrame:
    langs = ["bn", "or", "ta", "hi"]
    return pd.DataFrame({
        "item_id": [f"item-{i}" for i in range(n)],
        "language": [langs[i % 4] for i in range(n)],
        "task": "culture",
        "prompt": [f"প্রশ্ন নম্বর {i}: এই উৎসবের ইতিহাস কী?" for i in range(n)],
        "response": [f"উত্তর {i}: " + "এটি একটি দীর্ঘ উত্তর। " * 20 for i in range(n)],
    })


def start_server(delay: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "judge.testing", "--port", "0", "--delay", str(delay)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


async def bare(url: str, requests: list[dict], concurrency: int) -> float:
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
    it = iter(requests)

    async def worker():
        for kw in it:
            await client.chat.completions.create(**kw)

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t
    await client.close()
    return elapsed


def judge_once(url: str, sample: pd.DataFrame, conc: int) -> tuple[float, float, float]:
    """Wall time and CPU time of run_judge on a fresh ledger, and the wall time of its call
    phase alone (from the ledger's timestamps, read afterwards)."""
    cfg = JudgeConfig(name=f"bench{conc}", model="fake", base_url=url, concurrency=conc, timeout_s=60)
    with tempfile.TemporaryDirectory() as d:
        t, c = time.perf_counter(), time.process_time()
        s = run_judge(sample, RS, cfg, Path(d) / "ledger.sqlite")
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        assert s.ok == len(sample) and s.requests == len(sample), s
        df = Ledger(Path(d) / "ledger.sqlite").judgments()
        calls = (df.finished_at.max() - df.started_at.min()).total_seconds()
    return wall, cpu, calls


def bare_requests(url: str, sample: pd.DataFrame, conc: int) -> list[dict]:
    """Exactly the requests the judge sends, rendered up front for the bare loop."""
    cfg = JudgeConfig(name=f"bench{conc}", model="fake", base_url=url, concurrency=conc)
    with tempfile.TemporaryDirectory() as d, Ledger(Path(d) / "probe.sqlite") as led:
        run = JudgeRun(sample, RS, cfg, led)
        be = OpenAIBackend(cfg, client=object())
        return [be.request(run.planner.messages(c.row, c.metrics), run.schema(c)) for c in run.pending()]


def throughput(url: str, quick: bool, rounds: int, levels: list[int]) -> None:
    """Bare and judge runs alternate `rounds` times per concurrency; medians are printed
    (this machine is shared, so single runs are noisy)."""
    print(f"{'concurrency':>11} {'calls':>6} {'bare calls/s':>13} {'judge calls/s':>14} {'judgments/s':>12} "
          f"{'ratio':>6} {'ratio, call phase':>18} {'fixed ms':>8} {'bare CPU':>8} {'judge CPU':>9} {'CPU ratio':>10}")
    print(f"{'':>85}{'ms/call':>8} {'ms/call':>9}  (medians of {rounds} alternating rounds)")
    warm = synthetic_sample(20)  # one-time costs (imports, language data, client setup) out of the way
    asyncio.run(bare(url, bare_requests(url, warm, 4), 4))
    judge_once(url, warm, 4)
    for conc in levels:
        n = {1: 50, 16: 400, 64: 1000, 256: 1000}[conc] // (5 if quick else 1)
        sample = synthetic_sample(n)
        reqs = bare_requests(url, sample, conc)
        bare_rates, judge_rates, ratios, call_ratios, fixed, cpu = [], [], [], [], [], []
        for r in range(rounds):
            order = ("bare", "judge") if r % 2 == 0 else ("judge", "bare")
            for what in order:
                if what == "bare":
                    c0 = time.process_time()
                    tb = asyncio.run(bare(url, reqs, conc))
                    cb = time.process_time() - c0
                else:
                    tj, cj, tc = judge_once(url, sample, conc)
            cpu.append((1000 * cb / n, 1000 * cj / n))
            bare_rates.append(n / tb)
            judge_rates.append(n / tj)
            ratios.append(tb / tj)
            call_ratios.append(tb / tc)
            fixed.append(1000 * (tj - tc))
        med = statistics.median
        print(f"{conc:>11} {n:>6} {med(bare_rates):>13.0f} {med(judge_rates):>14.0f} {3 * med(judge_rates):>12.0f} "
              f"{med(ratios):>6.2f} {med(call_ratios):>18.2f} {med(fixed):>8.0f} {med(c[0] for c in cpu):>8.2f} {med(c[1] for c in cpu):>9.2f} "
              f"{med(c[0] / c[1] for c in cpu):>10.2f}", flush=True)


def resume(url: str, n_judgments: int) -> None:
    n_items = -(-n_judgments // 3)
    sample = synthetic_sample(n_items)
    cfg = JudgeConfig(name="resume", model="fake", base_url=url, mode="per_metric")  # 1 call = 1 judgment
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ledger.sqlite"
        t = time.perf_counter()
        with Ledger(path) as led:
            run = JudgeRun(sample, RS, cfg, led)
            calls = run.pending(render=True)
            stamp = now()
            led.record_many({"key": c.key, "judge": cfg.name, "model": cfg.model, "rubric": RS.name, "rubric_version": RS.version,
                             "prompt_hash": c.prompt_hash, "mode": cfg.mode, "repeat": c.repeat, "item_id": c.item_id, "status": "ok",
                             "results": '{"%s": {"score": 1, "human_score": 1, "probs": null, "expected_score": null, "entropy": null, '
                                        '"reason": "r", "status": "ok", "error": null}}' % c.metrics[0].name,
                             "raw_answer": "{}", "error": None, "attempts": 1, "prompt_tokens": 1, "completion_tokens": 1,
                             "started_at": stamp, "finished_at": stamp, "params": cfg.params_json(), "fingerprint": c.fingerprint} for c in calls)
        setup = time.perf_counter() - t
        t = time.perf_counter()
        s = run_judge(sample, RS, cfg, path)
        warm = time.perf_counter() - t
        assert s.cached == len(calls) and s.requests == 0, s
        with Ledger(path) as led:
            led.db.execute("UPDATE calls SET fingerprint = NULL")
        t = time.perf_counter()
        s = run_judge(sample, RS, cfg, path)
        cold = time.perf_counter() - t
        assert s.cached == len(calls) and s.requests == 0, s
    print(f"resume: skip {len(calls):,} cached judgments in {warm:.2f} s (goal < 5 s); "
          f"{cold:.2f} s if every prompt must be re-rendered (no fingerprint memo); setup {setup:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a fifth of the calls, 20,000 resume judgments")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="1,16,64,256", help="the concurrency levels, comma-separated")
    ap.add_argument("--no-resume", action="store_true", help="skip the resume timing")
    a = ap.parse_args()
    proc, url = start_server(0.02)
    try:
        print(f"loopback server {url}, 20 ms per answer, per_item calls (3 judgments each), logprobs on")
        print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
        throughput(url, a.quick, a.rounds, [int(c) for c in a.concurrency.split(",")])
        if not a.no_resume:
            resume(url, 20_000 if a.quick else 100_000)
        print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
