"""Benchmark of the report statistics against a straightforward baseline, in one process.

Data: 100,000 items x 5 metrics x 2 humans (1,000,000 human ratings) + 1 judge (500,000 judge
ratings), skewed like real ratings (most items at the top level, a lenient judge), 10 languages,
5 tasks, 5 length quintiles: 5 metrics x 21 cells (overall + 10 + 5 + 5) = 105 cells.

kasauti: ``reports.analysis.analyse`` computes every statistic of every cell with 1,000 item
bootstrap resamples (multinomial counts over item patterns). Peak memory is traced in a second,
separate run so tracing does not distort the timing.

Baseline: per cell and per resample, draw item indices with replacement, then call the
krippendorff package (humans' alpha) and sklearn's cohen_kappa_score (judge vs consensus,
unweighted, plus quadratic for ordinal metrics): fewer statistics than kasauti computes, so the
ratio is conservative. At full size it would take hours, so it runs on a few cells x a few
resamples and is extrapolated linearly in (items x resamples); the script prints exactly that.

usage: python benchmarks/bench_report.py [--items 100000] [--boot 1000] [--baseline-resamples 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports.analysis import analyse, scale_of  # noqa: E402
from reports.agreement import consensus  # noqa: E402
from reports.ratings import prepare  # noqa: E402
from rubrics import RubricSet  # noqa: E402

METRICS = {  # name: (levels, measurement, prevalence of the true level)
    "fluency": (5, "ordinal", [0.01, 0.02, 0.05, 0.22, 0.70]),
    "task_quality": (5, "ordinal", [0.03, 0.05, 0.12, 0.30, 0.50]),
    "persona": (3, "ordinal", [0.05, 0.15, 0.80]),
    "coherence": (3, "ordinal", [0.02, 0.18, 0.80]),
    "toxicity": (2, "nominal", [0.97, 0.03]),
}


def rubric_set() -> RubricSet:
    def scale(k):
        return {"levels": [{"value": v, "label": f"l{v}", "anchor": f"level {v}"} for v in range(k)]}
    metrics = [{"name": n, "title": n, "description": n, "measurement": meas, "human": scale(k),
                "judge": {"question": n, "scale": scale(k), "to_human": {v: v for v in range(k)}}}
               for n, (k, meas, _) in METRICS.items()]
    return RubricSet.model_validate({"name": "bench", "version": "1", "title": "bench", "description": "bench",
                                     "source": "synthetic", "guidelines": "bench",
                                     "families": [{"name": "all", "title": "all", "tasks": ["*"], "metrics": metrics}]})


def make_ratings(n_items: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.char.add("i", np.arange(n_items).astype(str))
    lang = rng.integers(0, 10, n_items)
    task = rng.integers(0, 5, n_items)
    length_bin = rng.integers(1, 6, n_items)
    frames = []
    for name, (k, _, prev) in METRICS.items():
        truth = rng.choice(k, n_items, p=prev)
        for r, (noise, shift) in enumerate(((0.15, 0), (0.2, 0), (0.3, 1))):  # 2 humans, 1 lenient judge
            flip = rng.random(n_items) < noise
            score = np.clip(truth + shift * (rng.random(n_items) < 0.3) + flip * rng.integers(-1, 2, n_items), 0, k - 1)
            frames.append(pd.DataFrame({"item_id": ids, "metric": name, "rater": ["h1", "h2", "judge"][r],
                                        "rater_kind": "judge" if r == 2 else "human", "score": score.astype(float),
                                        "language": np.char.add("lang", lang.astype(str)), "task": np.char.add("task", task.astype(str)),
                                        "length_bin": length_bin}))
    return pd.concat(frames, ignore_index=True)


def baseline_cell(humans2: np.ndarray, judge: np.ndarray, cons: np.ndarray, level: str, values, n_res: int, rng) -> None:
    """The straightforward way: resample item rows, call the packages once per resample."""
    import krippendorff
    from sklearn.metrics import cohen_kappa_score

    n = humans2.shape[1]
    ok = cons >= 0
    for _ in range(n_res):
        idx = rng.integers(0, n, n)
        krippendorff.alpha(reliability_data=humans2[:, idx], level_of_measurement=level, value_domain=values)
        sel = idx[ok[idx]]
        cohen_kappa_score(cons[sel], judge[sel], labels=values)
        if level == "ordinal":
            cohen_kappa_score(cons[sel], judge[sel], labels=values, weights="quadratic")


def run_baseline(clean: pd.DataFrame, specs, n_boot: int, n_res: int) -> tuple[float, int, int, float]:
    """Time the baseline on one metric's overall cell and one cell of each facet; extrapolate."""
    rng = np.random.default_rng(1)
    timed_item_resamples, elapsed, cells = 0, 0.0, 0
    metric = "fluency"
    sub = clean[clean["metric"] == metric]
    scale = scale_of(specs[metric])
    wide = sub.pivot_table(index="item_id", columns="rater", values="score", aggfunc="first")
    facets = sub.drop_duplicates("item_id").set_index("item_id").loc[wide.index, ["language", "task", "length_bin"]]
    h = wide[["h1", "h2"]].to_numpy().T
    j = wide["judge"].to_numpy().astype(int)
    counts = np.stack([(h == v).sum(0) for v in scale.values], 1)
    cons = consensus(counts, scale.level)
    masks = [np.ones(len(wide), bool)] + [(facets[f] == facets[f].iloc[0]).to_numpy() for f in ("language", "task", "length_bin")]
    for mask in masks:
        t0 = time.perf_counter()
        baseline_cell(h[:, mask], j[mask], cons[mask], scale.level, list(scale.values), n_res, rng)
        elapsed += time.perf_counter() - t0
        timed_item_resamples += int(mask.sum()) * n_res
        cells += 1
    # total work: every metric has (overall + each facet partition) = 4 x n_items item-cells, each x n_boot
    total = len(specs) * 4 * clean["item_id"].nunique() * n_boot
    return elapsed / timed_item_resamples * total, cells, n_res, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--baseline-resamples", type=int, default=20)
    args = ap.parse_args()
    rs = rubric_set()
    specs = rs.metrics
    ratings = make_ratings(args.items)
    n_h = int((ratings["rater_kind"] == "human").sum())
    print(f"data: {args.items:,} items x {len(METRICS)} metrics: {n_h:,} human + {len(ratings) - n_h:,} judge ratings; "
          f"cpu cores available: {len(os.sched_getaffinity(0))}")
    t0 = time.perf_counter()
    clean, rep = prepare(ratings, rs)
    t_prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows, _ = analyse(clean, specs, n_boot=args.boot, seed=0)
    t_stats = time.perf_counter() - t0
    n_cells = len({(r["metric"], r["facet"], r["level"]) for r in rows})
    n_stats = len(rows)
    print(f"kasauti: checked join {t_prep:.2f} s; all statistics, {n_cells} cells x {args.boot} resamples "
          f"({n_stats} figures with CIs): {t_stats:.2f} s")
    tracemalloc.start()
    analyse(clean, specs, n_boot=args.boot, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    import resource
    print(f"kasauti: peak traced memory during the statistics {peak / 2**20:.0f} MiB; "
          f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB (includes the 1.5M-row input)")
    est, cells, n_res, spent = run_baseline(clean, specs, args.boot, args.baseline_resamples)
    print(f"baseline (krippendorff.alpha + sklearn cohen_kappa_score per resample, fewer statistics): "
          f"EXTRAPOLATED from {cells} cells x {n_res} resamples timed in {spent:.1f} s, linearly in items x resamples, "
          f"to {n_cells} cells x {args.boot} resamples: {est:,.0f} s")
    print(f"ratio baseline / kasauti statistics: {est / t_stats:,.0f}x")


if __name__ == "__main__":
    main()
