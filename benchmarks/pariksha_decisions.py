"""PPI++ label savings and trust-or-escalate coverage on PARIKSHA round 1 (real humans, GPT-4 judge).

Population per metric x language: the items with at least one human rating. Y = the item's mean
human score, f = GPT-4's score on the human scale.

PPI++: in each of ``--splits`` random splits, ``--labelled`` items keep their human score and the
rest only the judge's; reported: the median of n_effective / n (human-only labels needed for the
PPI++ interval width, per label used), the labels saved at the same width (n_effective - n), the
interval width ratio and the coverage of the population mean (the mean over all the cell's items).

Escalation: PARIKSHA's judge gives one score, no probabilities or repeats, so its confidence is
the agreement rate of its answer level, estimated on a fit third of the items; the threshold is
chosen on a calibration third (target ``--target``, delta ``--delta``, the grid of ``kasauti escalate``
from the test third's confidences) and checked against the held-out humans (agreement with the
human consensus; items whose humans tie have no consensus and are left out, counted). Reported:
mean coverage on the test third and, with exact (Clopper-Pearson) 95% intervals, the share of
splits where the guarantee held (or nothing was trusted), measured two ways: on the test third
(the paper's check; with a few dozen trusted test items its own sampling noise makes it miss more
often than the guarantee does) and on the population the calibration third was drawn from (the non-fit items, calibration
and test thirds together: the agreement the guarantee is about). The closing-note table gives, per
metric x language, the human labels the judge saves at the same interval width and the coverage.

Bias, per metric over all languages: judge-minus-human bias by length quintile with the trend
test, and GPT-4's self-preference for responses of GPT models (GPT4o, gpt-4, gpt-35-turbo; the
model is the part of the item id after "|"), item-clustered bootstrap.

usage: python benchmarks/pariksha_decisions.py [PARIKSHA_DIR] [--labelled 50] [--splits 500] [--escalation-splits 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports import from_pariksha, prepare  # noqa: E402
from reports.bias import bias_by_group, self_preference  # noqa: E402
from reports.decisions import decision_grid  # noqa: E402
from reports.escalate import choose_threshold, decide, human_consensus  # noqa: E402
from reports.ppi import ppi_means  # noqa: E402

from rubrics import load_rubric_set  # noqa: E402


def load(root: str) -> pd.DataFrame:
    rubric = load_rubric_set("pariksha")
    ratings, items, imp = from_pariksha(root)
    return prepare(ratings, rubric, items, imp)[0]


def bias_tables(clean: pd.DataFrame) -> None:
    judge = clean[clean["rater_kind"] == "judge"].set_index(["metric", "item_id"])["score"].rename("judge")
    pairs = clean[clean["rater_kind"] == "human"].join(judge, on=["metric", "item_id"], how="inner")
    pairs = pairs.rename(columns={"score": "human"})
    pairs["gpt"] = pairs["item_id"].str.split("|").str[1].str.lower().str.contains("gpt")
    for metric, sub in pairs.groupby("metric", sort=True):
        table, trend = bias_by_group(sub, "length_bin", ordered=True)
        print(f"\n{metric}: bias by length quintile")
        print(table[["length_bin", "n_items", "bias", "bias_ci_low", "bias_ci_high"]].round(3).to_string(index=False))
        print(f"trend per quintile: {trend['slope']:.3f} [{trend['ci_low']:.3f}, {trend['ci_high']:.3f}], p = {trend['p_value']:.3g} (bootstrap resolution {1 / 2000:g})")
        sp = self_preference(sub, "gpt")
        print(f"self-preference for GPT responses: {sp['self_preference']:.3f} {[round(x, 3) for x in sp['self_preference_ci']]} "
              f"(judge gap {sp['judge_gap']:.3f}, human gap {sp['human_gap']:.3f}; {sp['n_items_own']} GPT items, "
              f"{sp['n_items_other']} others)")


def cell_tables(clean: pd.DataFrame) -> pd.DataFrame:
    rubric = load_rubric_set("pariksha")
    humans = clean[clean["rater_kind"] == "human"]
    y = humans.groupby(["metric", "item_id"])["score"].mean().rename("y")
    judge = clean[clean["rater_kind"] == "judge"].set_index(["metric", "item_id"])[["score", "language"]]
    cons = human_consensus(clean, rubric.metrics).set_index(["metric", "item_id"])["consensus"]
    table = judge.join(y, how="inner").join(cons).rename(columns={"score": "f"}).reset_index()
    return table


def ppi_savings(cell: pd.DataFrame, n: int, splits: int, rng) -> dict:
    size = len(cell)
    picks = np.argsort(rng.random((splits, size)), axis=1)
    lab_idx, unl_idx = picks[:, :n].ravel(), picks[:, n:].ravel()
    lab = pd.DataFrame({"y": cell["y"].to_numpy()[lab_idx], "f": cell["f"].to_numpy()[lab_idx],
                        "rep": np.repeat(np.arange(splits), n)})
    unl = pd.DataFrame({"f": cell["f"].to_numpy()[unl_idx], "rep": np.repeat(np.arange(splits), size - n)})
    res = ppi_means(lab, unl, by=["rep"]).cells
    truth = cell["y"].mean()
    width = (res["ci_high"] - res["ci_low"]) / (res["classical_ci_high"] - res["classical_ci_low"])
    ratio = res["n_effective"] / n
    return {"items": size, "n": n, "neff_per_label": ratio.median(), "labels_saved": (ratio.median() - 1) * n,
            "width_ratio": width.median(), "lam": res["lam"].median(),
            "ppi_coverage": ((res["ci_low"] <= truth) & (truth <= res["ci_high"])).mean(),
            "classical_coverage": ((res["classical_ci_low"] <= truth) & (truth <= res["classical_ci_high"])).mean()}


def _held(agree: np.ndarray, trusted: np.ndarray, target: float) -> bool:
    """The guarantee held on these items: nothing trusted, or the trusted ones' agreement reaches the target."""
    return not trusted.any() or agree[trusted].mean() >= target


def escalation(cell: pd.DataFrame, target: float, delta: float, splits: int, rng) -> dict:
    c = cell.dropna(subset=["consensus"])
    agree = (c["f"].to_numpy() == c["consensus"].to_numpy()).astype(int)
    level = c["f"].to_numpy()
    held_test, held_population, coverage, overall = [], [], [], agree.mean()
    for _ in range(splits):
        fit, cal, test = np.array_split(rng.permutation(len(c)), 3)
        rate = pd.Series(agree[fit]).groupby(level[fit]).mean()
        conf = pd.Series(level).map(rate).to_numpy(float)  # a level unseen in the fit third: NaN, escalated
        t = choose_threshold(conf[cal], agree[cal], target, delta, decision_grid(conf[test], len(cal), target, delta)[0])
        trusted = decide(conf, t.threshold) == "judge"
        coverage.append(trusted[test].mean())
        held_test.append(_held(agree[test], trusted[test], target))
        pool = np.concatenate([cal, test])
        held_population.append(_held(agree[pool], trusted[pool], target))
    return {"items_with_consensus": len(c), "no_consensus": int(cell["consensus"].isna().sum()),
            "judge_agreement": overall, "escalation_coverage": float(np.mean(coverage)),
            "splits": splits, "splits_trusting": int(np.sum(np.asarray(coverage) > 0)),
            "held_test": float(np.mean(held_test)), "held_population": float(np.mean(held_population))}


def with_ci(share: float, n: int) -> str:
    """A share of n splits with its exact (Clopper-Pearson) 95% interval."""
    ci = binomtest(round(share * n), n).proportion_ci(method="exact")
    return f"{share:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", nargs="?", default="/work/shared/data/pariksha-round1")
    ap.add_argument("--labelled", type=int, default=50)
    ap.add_argument("--splits", type=int, default=500)
    ap.add_argument("--escalation-splits", type=int, default=1000)
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--delta", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    clean = load(args.root)
    table = cell_tables(clean)
    rows = []
    for (metric, language), cell in table.groupby(["metric", "language"], sort=True):
        rows.append({"metric": metric, "language": language, **ppi_savings(cell, args.labelled, args.splits, rng),
                     **escalation(cell, args.target, args.delta, args.escalation_splits, rng)})
    out = pd.DataFrame(rows)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(out.round(3).to_string(index=False))
    print("\nper metric (mean over languages):")
    print(out.groupby("metric")[["neff_per_label", "labels_saved", "width_ratio", "ppi_coverage", "escalation_coverage", "held_test",
                                 "held_population"]].mean().round(3).to_string())
    print("\nper language (mean over metrics):")
    print(out.groupby("language")[["escalation_coverage", "held_test", "held_population", "judge_agreement"]].mean().round(3).to_string())
    trusting = out[out["splits_trusting"] > 0]
    print(f"\nthe guarantee (agreement >= {args.target:g} with probability >= {1 - args.delta:g}) where the judge was trusted in "
          f"some split: share of {args.escalation_splits} splits where it held, exact 95% interval")
    print(pd.DataFrame({"metric": trusting["metric"], "language": trusting["language"],
                        "splits trusting": trusting["splits_trusting"],
                        "held on the test third": [with_ci(h, n) for h, n in zip(trusting["held_test"], trusting["splits"])],
                        "held on the population": [with_ci(h, n) for h, n in zip(trusting["held_population"], trusting["splits"])],
                        }).to_string(index=False))
    print(f"\nclosing note: human labels the judge saves per {args.labelled} labels at the same interval width "
          f"(PPI++, median over splits), and the escalation coverage at {args.target:g} guaranteed agreement (delta {args.delta:g})")
    note = out.pivot(index="language", columns="metric", values=["labels_saved", "escalation_coverage"])
    note.columns = [f"{metric}: {'labels saved' if what == 'labels_saved' else 'coverage'}" for what, metric in note.columns]
    print(note.round(3).to_string())
    bias_tables(clean)


if __name__ == "__main__":
    main()
