"""Benchmark of the Bradley-Terry leaderboard with its prompt bootstrap, against choix.

Data: 20 models, 2,500 prompts x 20 comparisons = 50,000 comparisons drawn from the Davidson
model (``--ties``: tie parameter 0.5; without: plain Bradley-Terry, which choix also fits).

kasauti: ``reports.pairwise.leaderboard.leaderboard`` (point fit + 1,000 prompt resamples, all
fitted as one warm-started batch, percentile CIs of scores and ranks) on data written to a temporary
parquet file, in ``--runs`` fresh Python processes (default 3; medians printed, ``uptime`` load before
and after). Each process times its phases as a user's script runs them: import (pandas and the
leaderboard), data (read the parquet), then inside the one ``leaderboard`` call: design (the
comparisons counted per prompt), point fit and bootstrap (the two ``bt.fit`` calls, timed by
wrapping ``bt.fit``), the rest (resample draws, CIs, table); the parent times the whole process,
interpreter start included.

Baseline: per resample, draw prompts with replacement, gather their comparisons and fit
``choix.ilsr_pairwise`` once (alpha=0). Only ``--choix-resamples`` resamples are timed; the
script prints that the 1,000-resample time is extrapolated linearly from them.

``--coverage N`` also runs the heavy coverage simulation: N simulated studies (6 models, 150
prompts x 6 comparisons, ties) with ``--boot`` resamples each; prints the share of 95% CIs
that contain the true scores.

usage: python benchmarks/bench_pairwise.py [--boot 1000] [--runs 3] [--choix-resamples 5] [--ties] [--coverage 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_pairwise_stats import simulate  # noqa: E402

TIMED = """
import json, sys, time
t0 = time.perf_counter()
import pandas as pd
from reports.pairwise import bt, leaderboard as lb
t1 = time.perf_counter()
frame = pd.read_parquet(sys.argv[1])
t2 = time.perf_counter()
spans = {}

def timed(name, f):
    def run(*args, **kw):
        t = time.perf_counter()
        out = f(*args, **kw)
        spans.setdefault(name, []).append(time.perf_counter() - t)
        return out
    return run

lb.design, bt.fit = timed("design", lb.design), timed("fits", bt.fit)
table, info = lb.leaderboard(frame, n_boot=int(sys.argv[2]), seed=0)
t3 = time.perf_counter()
(design,), (point, boot) = spans["design"], spans["fits"]
print(json.dumps({"import": t1 - t0, "data": t2 - t1, "design": design, "point fit": point, "bootstrap": boot,
                  "rest": t3 - t2 - design - point - boot, "leaderboard": t3 - t2, "n_failed": info["n_failed"]}))
"""
PHASES = ("import", "data", "design", "point fit", "bootstrap", "rest", "leaderboard", "process")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def kasauti_runs(path: Path, n_boot: int, runs: int) -> dict[str, float]:
    """Median seconds per phase over `runs` fresh processes (and the process wall time)."""
    got = []
    for _ in range(runs):
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", TIMED, str(path), str(n_boot)], capture_output=True, text=True,
                             check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        got.append(json.loads(res.stdout) | {"process": time.perf_counter() - t0})
        print("  run: " + ", ".join(f"{k} {got[-1][k]:.2f}" for k in PHASES) + f" s; {got[-1]['n_failed']} resamples without a fit")
    return {k: float(np.median([g[k] for g in got])) for k in PHASES}


def choix_resamples(frame: pd.DataFrame, n: int, seed: int) -> float:
    """Seconds for n resamples the straightforward way: resample prompts, refit choix."""
    import choix

    models = sorted(set(frame["model_a"]) | set(frame["model_b"]))
    code = {m: i for i, m in enumerate(models)}
    win = np.where(frame["outcome"] == "a", frame["model_a"], frame["model_b"])
    lose = np.where(frame["outcome"] == "a", frame["model_b"], frame["model_a"])
    pairs = np.array([[code[w], code[lo]] for w, lo in zip(win, lose)])
    by_prompt = list(frame.groupby("prompt_id").indices.values())
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(n):
        take = np.concatenate([by_prompt[p] for p in rng.integers(0, len(by_prompt), len(by_prompt))])
        choix.ilsr_pairwise(len(models), pairs[take], alpha=0.0)
    return time.perf_counter() - t0


def coverage(n_studies: int, n_boot: int) -> float:
    from reports.pairwise.leaderboard import leaderboard

    rng = np.random.default_rng(123)
    truth = np.array([-0.8, -0.4, 0.0, 0.1, 0.5, 0.9])
    truth = truth - truth.mean()
    hits = []
    for rep in range(n_studies):
        table, _ = leaderboard(simulate(rng, truth, 150, 6, nu=0.6), n_boot=n_boot, seed=rep)
        t = table.set_index("model").loc[[f"m{i:02d}" for i in range(6)]]
        hits.append((t["ci_low"].to_numpy() <= truth) & (truth <= t["ci_high"].to_numpy()))
    return float(np.mean(hits))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--choix-resamples", type=int, default=5)
    ap.add_argument("--ties", action="store_true")
    ap.add_argument("--coverage", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    strengths = rng.normal(0, 1, 20)
    frame = simulate(rng, strengths, 2500, 20, nu=0.5 if args.ties else 0.0)
    print(f"data: 20 models, {frame['prompt_id'].nunique():,} prompts, {len(frame):,} comparisons "
          f"({(frame['outcome'] == 'tie').sum():,} ties); cpu cores available: {len(os.sched_getaffinity(0))}")
    print(f"load before: {uptime()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "comparisons.parquet"
        frame.to_parquet(path)
        med = kasauti_runs(path, args.boot, args.runs)
    print(f"load after: {uptime()}")
    print(f"kasauti, median of {args.runs} fresh processes: Davidson BT + {args.boot} prompt resamples with score and "
          f"rank CIs: process {med['process']:.2f} s = " + ", ".join(f"{k} {med[k]:.2f}" for k in PHASES[:6])
          + f" s (+ interpreter start); the leaderboard call {med['leaderboard']:.2f} s")
    if not args.ties:
        spent = choix_resamples(frame, args.choix_resamples, 1)
        est = spent / args.choix_resamples * (args.boot + 1)
        print(f"choix.ilsr_pairwise refitted per resample: {args.choix_resamples} resamples timed in {spent:.2f} s "
              f"({spent / args.choix_resamples:.3f} s each); EXTRAPOLATED linearly to {args.boot} resamples + the point fit: {est:.0f} s")
        print(f"ratio choix / kasauti: {est / med['leaderboard']:.0f}x the leaderboard call, "
              f"{est / med['process']:.0f}x kasauti's whole fresh process")
    if args.coverage:
        t0 = time.perf_counter()
        cov = coverage(args.coverage, args.boot)
        print(f"coverage of the 95% percentile CIs of BT scores: {cov:.4f} over {args.coverage} studies x 6 models "
              f"({args.boot} resamples each; {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
