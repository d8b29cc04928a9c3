"""The report's Pairwise and Decisions sections: frames for CSV, a JSON-able dict, notes for the verdicts.

Pairwise: :func:`reports.pairwise.report.pairwise_report` on the comparisons with the report's
bootstrap settings. Decisions, per judge x metric x language of the joined long ratings: PPI++
means of the human score and of the share acceptable (:func:`reports.ppi.ppi_means`: the items
humans rated are the labelled ones, the judge-only items the unlabelled ones; in a study, only the
labels :func:`reports.ppi.ppi_by_provenance` allows); trust-or-escalate
thresholds where the judge gave probabilities (:func:`reports.escalate.thresholds`); bias by
length bin with its trend and self-preference per judge x metric (:mod:`reports.bias`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .analysis import records
from .bias import bias_by_group, self_preference
from .config import ReportConfig
from .decisions import decision_grid
from .escalate import confidence, decide, human_consensus, thresholds
from .panel import judges_per_item
from .ppi import human_means, left_out, ppi_by_provenance, ppi_means, row_codes

CELL = ["judge", "metric", "language"]
KEYS = ["item_id", "metric", "rater", "language"]  # the columns the decisions join and group on
NO_BOOT = "no bootstrap (n_boot = 0): no CI, no significance"


def pairwise_section(comparisons: pd.DataFrame, cfg: ReportConfig) -> tuple[dict[str, pd.DataFrame], dict]:
    """The pairwise statistics of ``comparisons`` with the report's n_boot, seed and min_items."""
    from .pairwise.report import pairwise_report

    return pairwise_report(comparisons, n_boot=cfg.n_boot, seed=cfg.seed, min_items=cfg.min_items)


def system_section(clean: pd.DataFrame, cfg: ReportConfig) -> tuple[dict[str, pd.DataFrame], dict]:
    """System-level agreement of direct assessment (:func:`reports.pairwise.system.system_agreement`) per
    judge x metric x language with the report's n_boot and seed, or a note on why there is none."""
    from .pairwise.system import system_agreement

    if not (clean["rater_kind"] == "judge").any():
        return {}, {"note": "no judge ratings: no system-level agreement"}
    if "source_model" not in clean.columns or clean["source_model"].isna().all():
        return {}, {"note": "no source_model: the items name no source model, so no system-level agreement"}
    agreement, systems, counts = system_agreement(clean, n_boot=cfg.n_boot, seed=cfg.seed)
    if agreement.empty:
        return {}, {"note": "fewer than 3 source models with human and judge scores in every judge x metric x language "
                            "cell, so no system-level agreement", "counts": counts}
    return {"agreement": agreement}, {"n_boot": cfg.n_boot, "counts": counts, "agreement": records(agreement),
                                      "systems": records(systems)}


def _coded(clean: pd.DataFrame) -> pd.DataFrame:
    """``clean`` with its :data:`KEYS` as categoricals (sorted categories): the decisions' joins and
    groupings then hash integer codes, not strings, and sort as the strings do."""
    return clean.assign(**{c: clean[c].astype("category") for c in KEYS})


def _item_keys(clean: pd.DataFrame) -> np.ndarray:
    """Each row's metric x item as an integer code 0, 1, ... (in order of first appearance)."""
    return row_codes([clean["metric"], clean["item_id"]])


def _item_scores(clean: pd.DataFrame, keys: np.ndarray) -> pd.DataFrame:
    """One row per judge x item x metric: the judge's score ``f``, the mean human score ``y`` (NaN: no
    human) and, for a study, how the item came to humans (``drawn_by``); ``keys``: :func:`_item_keys`."""
    y = human_means(clean, keys)
    judge = (clean["rater_kind"] == "judge").to_numpy()
    keep = ["rater", "item_id", "metric", "language", "score"] + (["drawn_by"] if "drawn_by" in clean.columns else [])
    return clean.loc[judge, keep].rename(columns={"rater": "judge", "score": "f"}).assign(y=y[keys[judge]])


def _ppi(scores: pd.DataFrame, specs: dict, cfg: ReportConfig) -> pd.DataFrame:
    """PPI++ of the mean human score and of the share acceptable, per judge x metric x language."""
    parts = []
    for target in ("mean score", "share acceptable"):
        s = scores
        if target == "share acceptable":
            codes, metrics = pd.factorize(s["metric"])
            at = np.asarray([cfg.acceptable.get(m, specs[m].human.values[-1]) for m in metrics])
            levels = at[codes]
            s = s.assign(y=(s["y"] >= levels).where(s["y"].notna()).astype(float), f=(s["f"] >= levels).astype(float))
        estimate = ppi_by_provenance if "drawn_by" in s.columns else ppi_means
        res = estimate(s[s["y"].notna()], s[s["y"].isna()], by=CELL).cells.astype({c: str for c in CELL})
        if target == "share acceptable":
            res["acceptable_at"] = res["metric"].map(dict(zip(metrics, at)))
        parts.append(res.assign(target=target))
    out = pd.concat(parts, ignore_index=True)
    out["labels_saved"] = out["n_effective"] - out["n_labelled"]
    return out


def _escalation(clean: pd.DataFrame, specs: dict, cfg: ReportConfig) -> tuple[pd.DataFrame, str | None]:
    """Thresholds per judge x metric x language from the judges' probabilities, or why there are none."""
    judge = (clean["rater_kind"] == "judge").to_numpy()
    if "probs" not in clean.columns or not (judge & clean["probs"].notna().to_numpy()).any():
        return pd.DataFrame(), "no judge confidence: the judges gave no probabilities (judge.logprobs), so no threshold"
    j = clean[judge]
    answers = j.drop(columns="status").rename(columns={"rater": "judge"})  # joined rows are answers (status: submitted)
    conf = confidence(answers.assign(human_score=j["score"], score=j["raw_score"]), "probs")
    cons = human_consensus(clean, specs)
    lang = j[["item_id", "metric", "language"]].drop_duplicates(["item_id", "metric"])
    items = conf.merge(lang, on=["item_id", "metric"]).merge(cons, on=["metric", "item_id"], how="left")
    cal = items.dropna(subset=["consensus", "confidence"]).assign(agree=lambda d: (d["decision"] == d["consensus"]).astype(int))
    n_left_out = None
    if "drawn_by" in j.columns:  # a study: the labels a random-sample method may use (reports.ppi.left_out)
        cal = cal.merge(j[["item_id", "drawn_by"]].drop_duplicates("item_id"), on="item_id", how="left")
        flags = left_out(cal, CELL)
        dropped = (flags["escalated"] | flags["unknown"]).to_numpy()
        n_left_out = cal[dropped].groupby(CELL).size()
        cal = cal[~dropped]
    if cal.empty:
        return pd.DataFrame(), "no item has both a judge probability and a human consensus"
    none = items.iloc[:0]
    todo = dict(tuple(items[items["consensus"].isna()].groupby(CELL, sort=True)))  # the items to be decided, per cell
    grids = {key: decision_grid(todo.get(key, none)["confidence"], len(c), cfg.escalation_target, cfg.escalation_delta)[0]
             for key, c in cal.groupby(CELL, sort=True)}  # set by the items to be decided, not the calibration ones
    out = thresholds(cal, CELL, cfg.escalation_target, cfg.escalation_delta, grids)
    keys = [tuple(k) for k in out[CELL].to_numpy()]
    out["n_to_decide"] = [len(todo.get(k, none)) for k in keys]
    if n_left_out is not None:
        out["n_left_out"] = [int(n_left_out.get(k, 0)) for k in keys]  # labels not calibrating: escalated, or beside the slice
    out["coverage_to_decide"] = [float(np.mean(decide(todo[k]["confidence"], t) == "judge")) if k in todo else None
                                 for k, t in zip(keys, out["threshold"])]
    return out, None


def _pairs(clean: pd.DataFrame, keys: np.ndarray) -> tuple[pd.DataFrame, list[tuple[str, str, slice]]]:
    """bias.py's pairs: one row per judge row x human row of its item and metric (``judge`` and
    ``human`` scores, ``item_id`` as a categorical, ``length_bin``, ``source_model`` where given), in
    blocks per judge x metric (sorted; within a block, the judge rows' order, then the humans');
    returns them and (judge, metric, rows) per block."""
    human = np.flatnonzero((clean["rater_kind"] == "human").to_numpy())
    judge = np.flatnonzero((clean["rater_kind"] == "judge").to_numpy())
    rater, raters = pd.factorize(clean["rater"], sort=True)
    metric, metrics = pd.factorize(clean["metric"], sort=True)
    block = (rater.astype(np.int64) * len(metrics) + metric)[judge]
    order = np.argsort(block, kind="stable")
    judge, block = judge[order], block[order]
    by_key = human[np.argsort(keys[human], kind="stable")]  # the human rows grouped by item x metric, in row order
    n_humans = np.bincount(keys[human], minlength=int(keys.max()) + 1)
    first = np.cumsum(n_humans) - n_humans
    reps = n_humans[keys[judge]]
    left = np.repeat(judge, reps)
    offset = np.arange(len(left)) - np.repeat(np.cumsum(reps) - reps, reps)  # each pair's place among its item's humans
    right = by_key[np.repeat(first[keys[judge]], reps) + offset]
    item, items = pd.factorize(clean["item_id"])
    score = clean["score"].to_numpy(float)
    pairs = pd.DataFrame({"item_id": pd.Categorical.from_codes(item[left], categories=items), "judge": score[left],
                          "human": score[right]})
    for col in ("length_bin", "source_model"):
        if col in clean.columns:
            pairs[col] = clean[col].array.take(left)
    block = np.repeat(block, reps)
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]]) if len(block) else np.array([], int)
    ends = np.r_[starts[1:], len(block)]
    return pairs, [(raters[block[a] // len(metrics)], metrics[block[a] % len(metrics)], slice(a, b)) for a, b in zip(starts, ends)]


def _bias(clean: pd.DataFrame, keys: np.ndarray, cfg: ReportConfig) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """Bias by length bin (table + trend) and self-preference, per judge x metric; ``keys``: :func:`_item_keys`."""
    pairs, blocks = _pairs(clean, keys)
    fam = cfg.model_families
    tables, trends, selfpref = [], [], []
    for judge, metric, rows in blocks:
        sub = pairs.iloc[rows]
        key = {"judge": judge, "metric": metric}
        lengths = sub.dropna(subset=["length_bin"])
        if lengths["length_bin"].nunique() >= 2:
            table, trend = bias_by_group(lengths, "length_bin", ordered=True, n_boot=max(cfg.n_boot, 1), seed=cfg.seed)
            tables.append(table.assign(**key))
            trends.append({**key, **trend})
        else:
            trends.append({**key, "slope": None, "note": "fewer than two length bins with judge and human scores"})
        if judge not in fam:
            selfpref.append({**key, "self_preference": None, "note": "the judge's model family is unknown (report.model_families)"})
            continue
        source = sub["source_model"] if "source_model" in sub.columns else pd.Series(None, index=sub.index, dtype=object)
        known = source.notna().to_numpy()  # a source model not in model_families is of another family
        s = sub[known].assign(own=(source[known].map(fam) == fam[judge]).to_numpy())
        res = self_preference(s, "own", n_boot=max(cfg.n_boot, 1), seed=cfg.seed) if len(s) else \
            {"self_preference": None, "note": "no response names its source model"}
        selfpref.append({**key, "family": fam[judge], **res, "n_rows_no_source_model": int((~known).sum())})
    lb = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if cfg.n_boot == 0:  # one resample was drawn for the point estimates: no interval, nothing significant
        lb = lb.assign(**{c: np.nan for c in lb.columns if "_ci_" in c}, significant=None) if len(lb) else lb
        for d in trends + selfpref:
            d.update({k: None for k in d if "ci" in k or k in ("p_value", "significant")})
            d["note"] = "; ".join(filter(None, [d.get("note"), NO_BOOT]))
    return lb, trends, selfpref


def decisions_section(clean: pd.DataFrame, specs: dict, cfg: ReportConfig, panel: dict | None = None) -> tuple[dict[str, pd.DataFrame], dict]:
    """The decision statistics of the joined long ratings (module doc); ``panel``: the panel's
    counts when a panel of judges was added. Returns frames (for CSV) and the JSON dict."""
    if not (clean["rater_kind"] == "judge").any():
        return {}, {"note": "no judge ratings: no decision statistics"}
    coded = _coded(clean)
    keys = _item_keys(coded)
    ppi = _ppi(_item_scores(coded, keys), specs, cfg)
    esc, esc_note = _escalation(clean, specs, cfg)
    length_bias, trends, selfpref = _bias(coded, keys, cfg)
    frames = {"ppi": ppi, "escalation": esc, "length_bias": length_bias, "length_trend": pd.DataFrame(trends),
              "self_preference": pd.DataFrame(selfpref)}
    summary = {"escalation_target": cfg.escalation_target, "escalation_delta": cfg.escalation_delta,
               "escalation_note": esc_note, "panel": panel or {"note": "fewer than two judges scored the same items"},
               **{name: records(f) for name, f in frames.items()}}
    return frames, summary


def bias_notes(summary: dict) -> dict[tuple[str, str], list[str]]:
    """(metric, judge) -> notes on significant length-bias trends and self-preference, for the verdicts."""
    notes: dict[tuple[str, str], list[str]] = {}
    for t in summary.get("length_trend", []):
        if t.get("significant"):
            notes.setdefault((t["metric"], t["judge"]), []).append(
                f"length bias: judge-minus-human bias changes by {t['slope']:+.3f} per length bin "
                f"[{t['ci_low']:+.3f}, {t['ci_high']:+.3f}]")
    for s in summary.get("self_preference", []):
        if s.get("significant"):
            lo, hi = s["self_preference_ci"]
            notes.setdefault((s["metric"], s["judge"]), []).append(
                f"self-preference: the judge rates its own family's ({s['family']}) responses {s['self_preference']:+.3f} "
                f"[{lo:+.3f}, {hi:+.3f}] relative to others, beyond the humans' gap")
    return notes


def judges_sharing_items(clean: pd.DataFrame) -> list[str]:
    """Judges that scored at least one item x metric some other judge scored too (panel members)."""
    keys, judges, rater, raters = judges_per_item(clean.loc[(clean["rater_kind"] == "judge").to_numpy(),
                                                            ["metric", "item_id", "rater"]])
    return sorted(raters[pd.unique(rater[judges[keys] >= 2])].tolist())
