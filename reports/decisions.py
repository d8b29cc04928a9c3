"""Who decides each item: the judge, where its confidence clears a guaranteed threshold, or humans.

:func:`decide_study` reads a study's sample, ratings and judgments and, per metric x language,
chooses the trust-or-escalate threshold (:mod:`reports.escalate`) on the human-labelled items
(submitted ratings with a consensus; items whose humans tie are left out and counted), on a
grid built from the confidences of the cell's other items (those to be decided), then decides
every sampled item x metric of its task family. The calibration items must be a random subset of
the sample: ratings of escalated items, chosen by the judge, would break the guarantee. With a
random slice (``kasauti push --random``, ``slices.parquet``), a cell with slice labels calibrates
on them alone (:func:`reports.ppi.left_out`); the other rated items' consensus decides them but
does not calibrate. The result is the ``decisions.parquet`` table (`studytables.DECISIONS`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

import studytables
from rubrics.schema import RubricSet

from .escalate import DEFAULT_GRID, SOURCES, choose_threshold, confidence as confidence_of, coverage_grid, decide, \
    human_consensus
from .ppi import left_out
from .ratings import drawn_by

JUDGMENT_COLUMNS = ("judge", "item_id", "metric", "repeat", "score", "human_score", "probs", "status")
TEST = "fixed-sequence testing, exact binomial tail (Jung et al., ICLR 2025)"


class DecisionError(ValueError):
    """A study whose decisions cannot be made; the message is one line saying what to do."""


def min_calibration(target: float, delta: float) -> int:
    """The fewest calibration items that can guarantee ``target``: all agreeing, target**n <= delta."""
    return math.ceil(math.log(delta) / math.log(target))


def decision_grid(todo, n_calibration: int, target: float, delta: float) -> tuple[np.ndarray, float]:
    """(grid, first coverage): :func:`coverage_grid` of the confidences of the items to be decided, from
    the coverage that holds about twice the fewest calibration items that could pass (fixed-sequence
    testing stops at its first failure, and a first point above fewer items fails for sure; the start
    depends on the number of calibration items, not on their values); :data:`DEFAULT_GRID` when no item
    to be decided has a confidence."""
    start = min(1.0, 2 * min_calibration(target, delta) / max(n_calibration, 1))
    todo = np.asarray(todo, float)
    return (coverage_grid(todo, start=start) if np.isfinite(todo).any() else DEFAULT_GRID), start


@dataclass
class Decisions:
    """``table``: one row per item x metric (the DECISIONS columns); ``cells``: one row per metric x language."""

    table: pd.DataFrame
    cells: pd.DataFrame
    outside_sample: int  # submitted human ratings of items not in the sample (not used)

    def escalated(self) -> list[str]:
        """Items that humans must still rate: decided by humans for some metric and without a human consensus on it."""
        t = self.table
        return sorted(set(t.loc[(t["decided_by"] == "humans") & t["human_consensus"].isna(), "item_id"]))

    def write(self, path: str | Path) -> None:
        """Write ``decisions.parquet`` (checked against its table definition, atomically)."""
        studytables.write(studytables.DECISIONS, self.table, path)


def _judge_confidence(judgments: pd.DataFrame, source: str, judge: str | None) -> tuple[str, pd.DataFrame]:
    if source not in SOURCES:
        raise DecisionError(f"unknown confidence source {source!r}: expected one of {', '.join(SOURCES)}")
    judges = sorted(judgments.loc[judgments["status"] == "ok", "judge"].unique())
    if not judges:
        raise DecisionError("judgments.parquet has no answered judgment (status ok); run `kasauti judge` first")
    if source == "judges":
        if judge is not None:
            raise DecisionError("--judge names one judge, but --confidence judges uses all of them as a panel")
    elif judge is None and len(judges) > 1:
        raise DecisionError(f"judgments.parquet holds judges {judges}: name the one to decide with --judge "
                            "(or use --confidence judges for the panel)")
    elif judge is not None and judge not in judges:
        raise DecisionError(f"judge {judge!r} has no answered judgment; judgments.parquet holds {judges}")
    name = "panel" if source == "judges" else judge or judges[0]
    rows = judgments if source == "judges" else judgments[judgments["judge"] == name]
    try:
        conf = confidence_of(rows, source)
    except ValueError as exc:
        raise DecisionError(str(exc)) from None
    if not conf["confidence"].notna().any():
        raise DecisionError(f"judge {name!r} gave no probabilities, so confidence {source!r} has nothing to go on: "
                            "run it with `logprobs: true`, or use --confidence repeats (repeats >= 2) or judges")
    return name, conf


def _check_ratings(humans: pd.DataFrame, specs: dict, rubric: str, where) -> None:
    """Every human rating's metric is the rubric's and its score on that metric's human scale."""
    for row, metric, score in zip(humans.index, humans["metric"], humans["score"]):
        spec = specs.get(metric)
        if spec is None:
            raise DecisionError(f"{where}: row {row + 1}, column 'metric': {metric!r} is not a metric of rubric set "
                                f"{rubric!r} ({', '.join(sorted(specs))}); fix the ratings or the study's rubric")
        if score not in spec.human.values:
            raise DecisionError(f"{where}: row {row + 1}, column 'score': {score!r} is not on the human scale of "
                                f"{metric!r} ({', '.join(map(str, spec.human.values))}); fix the ratings")


def _escalated_consensus(path, sample: pd.DataFrame, specs: dict, rubric: str) -> pd.DataFrame:
    """Consensus of the submitted ratings of escalated items (``escalated_consensus``); empty without the file."""
    if path is None or not Path(path).is_file():
        return pd.DataFrame(columns=["metric", "item_id", "escalated_consensus"])
    ratings = studytables.read(studytables.RATINGS, path)
    humans = ratings[(ratings["rater_kind"] == "human") & ratings["status"].fillna("submitted").eq("submitted")]
    _check_ratings(humans, specs, rubric, path)
    humans = humans[humans["item_id"].isin(sample["item_id"])]
    return human_consensus(humans, specs)[["metric", "item_id", "consensus"]].rename(
        columns={"consensus": "escalated_consensus"})


def decide_study(sample_path: str | Path, ratings_path: str | Path, judgments_path: str | Path, rs: RubricSet,
                 target: float = 0.9, delta: float = 0.05, confidence: str = "probs", judge: str | None = None,
                 now: datetime | None = None, escalated_ratings_path: str | Path | None = None,
                 slices_path: str | Path | None = None) -> Decisions:
    """Decisions for every sampled item x metric (module doc). Raises DecisionError (one line) when no
    metric x language has enough human-labelled items to guarantee ``target``, or the judge has no confidence.

    ``escalated_ratings_path`` (optional file): ratings of escalated items; their consensus fills
    ``human_consensus`` but never calibrates a threshold (those items were chosen by the judge), nor
    do their ratings in ``ratings_path``. ``slices_path`` (optional file): the random slice; where a
    cell has slice labels, only they calibrate."""
    if not 0 < target < 1 or not 0 < delta < 1:
        raise DecisionError(f"target {target:g} and delta {delta:g} must both lie strictly between 0 and 1")
    sample = studytables.read(studytables.SAMPLE, sample_path, ["item_id", "language", "task"])
    if not Path(ratings_path).is_file():
        raise DecisionError(f"{ratings_path}: no human ratings; push a random slice of the sample "
                            "(`kasauti push --random N`), have it rated and run `kasauti pull` first")
    ratings = studytables.read(studytables.RATINGS, ratings_path)
    judgments = studytables.read(studytables.JUDGMENTS, judgments_path, JUDGMENT_COLUMNS)
    name, conf = _judge_confidence(judgments, confidence, judge)
    specs = rs.metrics

    humans = ratings[(ratings["rater_kind"] == "human") & ratings["status"].fillna("submitted").eq("submitted")]
    _check_ratings(humans, specs, rs.name, ratings_path)
    outside = humans[~humans["item_id"].isin(sample["item_id"])]
    humans = humans[humans["item_id"].isin(sample["item_id"])]
    consensus = human_consensus(humans, specs)[["metric", "item_id", "consensus"]]
    escalated = _escalated_consensus(escalated_ratings_path, sample, specs, rs.name)

    items = sample.assign(metric=[[m.name for m in rs.family_for(str(t)).metrics] for t in sample["task"]])
    items = items.explode("metric")[["item_id", "metric", "language"]]
    items = items.merge(conf[["item_id", "metric", "decision", "confidence"]], on=["item_id", "metric"], how="left")
    items = items.merge(consensus, on=["item_id", "metric"], how="left")
    items = items.merge(escalated, on=["item_id", "metric"], how="left")
    # labels of escalated items, or rated outside the random slice in a cell with slice labels: decide, never calibrate
    with_consensus = items[items["consensus"].notna()]
    came = drawn_by(with_consensus["item_id"], slices_path, escalated["item_id"])
    flags = left_out(with_consensus.assign(drawn_by=came), ["metric", "language"])
    items["left_out"] = False
    items.loc[with_consensus.index[(flags["escalated"] | flags["unknown"]).to_numpy()], "left_out"] = True
    items["escalated_consensus"] = items["consensus"].where(items["left_out"]).fillna(items["escalated_consensus"].astype(float))
    items["consensus"] = items["consensus"].mask(items["left_out"])

    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    n_min = min_calibration(target, delta)
    parts, cells = [], []
    for (metric, language), cell in items.groupby(["metric", "language"], sort=True):
        labelled = cell["consensus"].notna()
        rated = humans[(humans["metric"] == metric) & humans["item_id"].isin(cell["item_id"])]["item_id"].nunique()
        agree = (cell.loc[labelled, "decision"] == cell.loc[labelled, "consensus"]).astype(int)
        todo = cell.loc[~labelled, "confidence"]
        grid, start = decision_grid(todo, int(labelled.sum()), target, delta)
        t = choose_threshold(cell.loc[labelled, "confidence"], agree, target, delta, grid)
        by = decide(cell["confidence"], t.threshold)
        coverage = float((by == "judge").mean())
        provenance = {
            "test": TEST, "target": target, "delta": delta, "confidence": confidence, "judge": name,
            "n_calibration": t.n_calibration, "n_left_out": int(cell["left_out"].sum()),
            "n_no_consensus": int(rated - t.n_calibration - cell["left_out"].sum()),
            "n_min": n_min, "calibration_agreement": t.agreement, "calibration_coverage": t.coverage,
            "grid": (f"coverage grid of the {len(todo)} items to be decided, from coverage {start:.2f} in steps of 0.02"
                     if grid is not DEFAULT_GRID
                     else "0.00, 0.01, ..., 1.00 (no item to be decided has a confidence)"),
            "chosen_at": stamp, "summary": t.provenance(),
        }
        parts.append(cell.assign(decided_by=by, judge=name, threshold=t.threshold, target=target,
                                 guaranteed_agreement=t.guaranteed, coverage=coverage,
                                 provenance=json.dumps(provenance)))
        cells.append({"metric": metric, "language": language, "items": len(cell), "n_calibration": t.n_calibration,
                      "threshold": t.threshold, "guaranteed_agreement": t.guaranteed, "coverage": coverage,
                      "escalated": int(((by == "humans") & ~labelled & cell["escalated_consensus"].isna()).sum())})
    cells = pd.DataFrame(cells)
    if not len(cells) or (cells["n_calibration"] < n_min).all():
        have = ", ".join(f"{r.metric}/{r.language} {r.n_calibration}" for r in cells.itertuples()) or "none"
        raise DecisionError(f"no metric x language has the {n_min} human-labelled items (with a consensus) needed to "
                            f"guarantee agreement {target:g} at delta {delta:g} (have: {have}); have more of a random "
                            "slice of the sample rated (`kasauti push --random N`) and pulled, or lower --target")
    table = pd.concat(parts, ignore_index=True).rename(columns={"decision": "judge_score"}).drop(columns="left_out")
    table["human_consensus"] = table.pop("consensus").astype(float).fillna(table.pop("escalated_consensus").astype(float))
    table = studytables.conform(studytables.DECISIONS, table.sort_values(["item_id", "metric"], kind="stable"))
    return Decisions(table.reset_index(drop=True), cells, len(outside))
