"""Benchmark of the whole report command, per phase, in fresh processes.

Shapes (synthetic ratings, skewed like real ones: most items at the top level, lenient judges):
(a) ``77k``: 2,400 items x 5 metrics x 6 judges + 2 humans on 500 items (77,000 ratings),
    4 languages, 3 tasks, 5 length bins;
(b) ``updesh``: 20,000 items x 25 metrics x (3 humans + 3 judges) (3,000,000 ratings),
    13 languages, 16 tasks, 5 length bins, 1,000 bootstrap resamples;
and a sweep over the number of metrics in the Updesh shape (cells grow linearly with metrics) to
show how the time grows with the number of cells.

Each run is a fresh ``python`` process that imports ``reports``, reads the long ratings Parquet
(``reports.read_long``) and calls ``reports.build_report`` (join, calibration, statistics, verdicts,
HTML, JSON/CSV written), with the phases taken from ``reports.build``'s DEBUG log; the total is the
process's wall time, interpreter start included; ``cpu`` is the process's CPU time (on a shared
machine wall times grow with the load, CPU time much less). ``--cli`` also times ``kasauti report --ratings``
(the command as users run it; its own imports belong to the CLI). Medians of ``--runs`` runs; the
load average is printed before and after each shape.

usage: python benchmarks/bench_report.py [--shape 77k updesh sweep] [--runs 3] [--cli] [--sweep-metrics 5 10 25]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]

TEMPLATES = [  # (levels, measurement, prevalence of the true level); metric i uses TEMPLATES[i % 5]
    (5, "ordinal", [0.01, 0.02, 0.05, 0.22, 0.70]),
    (5, "ordinal", [0.03, 0.05, 0.12, 0.30, 0.50]),
    (3, "ordinal", [0.05, 0.15, 0.80]),
    (3, "ordinal", [0.02, 0.18, 0.80]),
    (2, "nominal", [0.97, 0.03]),
]

SHAPES = {  # items, metrics, judges, humans per rated item, items with humans, languages, tasks, n_boot
    "77k": dict(items=2400, metrics=5, judges=6, humans=2, human_items=500, languages=4, tasks=3, n_boot=1000),
    "updesh": dict(items=20000, metrics=25, judges=3, humans=3, human_items=20000, languages=13, tasks=16, n_boot=1000),
}

DRIVER = """
import json, logging, sys, time
t0 = time.perf_counter()
import reports, rubrics
t1 = time.perf_counter()
phases = {"import": t1 - t0}
class Phases(logging.Handler):
    def emit(self, record):
        name, secs = record.args
        phases[name] = secs
logging.getLogger("reports.build").addHandler(Phases())
logging.getLogger("reports.build").setLevel(logging.DEBUG)
table = reports.read_long(sys.argv[1])
phases["read"] = time.perf_counter() - t1
rs = rubrics.load_rubric_set(sys.argv[2], require_judge=False)
reports.build_report(table, rs, sys.argv[3], config=reports.ReportConfig(n_boot=int(sys.argv[4])))
phases["cpu (process)"] = time.process_time()
print(json.dumps(phases))
"""


def rubric(n_metrics: int) -> dict:
    def scale(k):
        return {"levels": [{"value": v, "label": f"l{v}", "anchor": f"level {v}"} for v in range(k)]}
    metrics = [{"name": f"m{i:02d}", "title": f"metric {i}", "description": "bench", "measurement": TEMPLATES[i % 5][1],
                "human": scale(TEMPLATES[i % 5][0])} for i in range(n_metrics)]
    return {"name": "bench", "version": "1", "title": "bench", "description": "bench", "source": "synthetic",
            "guidelines": "bench", "families": [{"name": "all", "title": "all", "tasks": ["*"], "metrics": metrics}]}


def make_ratings(items: int, metrics: int, judges: int, humans: int, human_items: int, languages: int, tasks: int,
                 seed: int = 0, **_) -> pd.DataFrame:
    """The long ratings table of a synthetic study."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("i", np.arange(items).astype(str))
    facets = {"language": np.char.add("lang", rng.integers(0, languages, items).astype(str)),
              "task": np.char.add("task", rng.integers(0, tasks, items).astype(str)),
              "length_bin": rng.integers(1, 6, items)}
    raters = [(f"h{r}", "human", 0.15 + 0.05 * r, 0) for r in range(humans)]
    raters += [(f"judge{r}", "judge", 0.2 + 0.05 * r, 1) for r in range(judges)]
    frames = []
    for i in range(metrics):
        k, _, prev = TEMPLATES[i % 5]
        truth = rng.choice(k, items, p=prev)
        for name, kind, noise, shift in raters:
            sel = slice(None) if kind == "judge" else slice(0, human_items)
            flip = rng.random(items) < noise
            score = np.clip(truth + shift * (rng.random(items) < 0.3) + flip * rng.integers(-1, 2, items), 0, k - 1)
            frames.append(pd.DataFrame({"item_id": ids[sel], "metric": f"m{i:02d}", "rater": name, "rater_kind": kind,
                                        "score": score[sel].astype(float), **{f: v[sel] for f, v in facets.items()}}))
    return pd.concat(frames, ignore_index=True)


def n_levels(shape: dict) -> int:
    """Facet levels per metric x judge: overall, each language, task and length bin."""
    return 1 + shape["languages"] + shape["tasks"] + 5


def n_cells(shape: dict) -> int:
    """Cells analysed: metric x judge x facet level, the judges being the raw ones, their panel (when two or more
    judges score the same items, as here) and each one calibrated."""
    return shape["metrics"] * 2 * (shape["judges"] + (shape["judges"] >= 2)) * n_levels(shape)


def run_once(ratings: Path, rubric_path: Path, out: Path, n_boot: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", DRIVER, str(ratings), str(rubric_path), str(out), str(n_boot)],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"the report failed:\n{done.stderr[-3000:]}")
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    phases["total (process)"] = time.perf_counter() - start
    return phases


def run_cli(ratings: Path, rubric_path: Path, out: Path, n_boot: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kasauti", "report", "--ratings", str(ratings), "--rubric", str(rubric_path),
                    "--out", str(out), "--n-boot", str(n_boot), "--allow-excluded"],
                   capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start


def bench(name: str, shape: dict, runs: int, cli: bool, tmp: Path) -> dict:
    ratings = make_ratings(**shape)
    path, rubric_path = tmp / f"{name}.parquet", tmp / f"{name}.yaml"
    ratings.to_parquet(path, index=False)
    rubric_path.write_text(yaml.safe_dump(rubric(shape["metrics"])), encoding="utf-8")
    print(f"\n[{name}] {len(ratings):,} ratings, {shape['items']:,} items, {shape['metrics']} metrics, {shape['judges']} judges "
          f"(+ their panel, + as many calibrated), {n_levels(shape)} facet levels: {n_cells(shape):,} cells; "
          f"n_boot {shape['n_boot']}; load average before {os.getloadavg()[0]:.2f}")
    results = [run_once(path, rubric_path, tmp / f"{name}-out", shape["n_boot"]) for _ in range(runs)]
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print("  " + "; ".join(f"{k} {v:.2f} s" for k, v in med.items()) + f"  (median of {runs})")
    if cli:
        walls = [run_cli(path, rubric_path, tmp / f"{name}-cli", shape["n_boot"]) for _ in range(runs)]
        print(f"  kasauti report --ratings (fresh process): {statistics.median(walls):.2f} s (median of {runs})")
    print(f"  load average after {os.getloadavg()[0]:.2f}; cpu cores available {len(os.sched_getaffinity(0))}")
    return med


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", nargs="+", default=["77k", "updesh", "sweep"], choices=["77k", "updesh", "sweep"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cli", action="store_true", help="also time `kasauti report --ratings` as a whole")
    ap.add_argument("--sweep-metrics", type=int, nargs="+", default=[5, 10, 25], help="metrics per sweep point")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.shape:
            if name != "sweep":
                bench(name, SHAPES[name], args.runs, args.cli, Path(tmp))
                continue
            rows = []
            for metrics in args.sweep_metrics:
                med = bench(f"updesh-{metrics}-metrics", {**SHAPES["updesh"], "metrics": metrics}, args.runs, False, Path(tmp))
                rows.append((n_cells({**SHAPES["updesh"], "metrics": metrics}), med["total (process)"], med["statistics"]))
            print("\ncells, total s, statistics s, statistics ms per cell:")
            for cells, total, stat in rows:
                print(f"  {cells:6,}  {total:6.2f}  {stat:6.2f}  {1000 * stat / cells:.2f}")


if __name__ == "__main__":
    main()
