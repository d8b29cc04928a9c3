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

from .bias import bias_by_group, self_preference
from .config import ReportConfig
from .decisions import decision_grid
from .escalate import confidence, decide, human_consensus, thresholds
from .ppi import left_out, ppi_by_provenance, ppi_means

CELL = ["judge", "metric", "language"]
NO_BOOT = "no bootstrap (n_boot = 0): no CI, no significance"


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


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
    return {"agreement": agreement}, {"n_boot": cfg.n_boot, "counts": counts, "agreement": _records(agreement),
                                      "systems": _records(systems)}


def _item_scores(clean: pd.DataFrame) -> pd.DataFrame:
    """One row per judge x item x metric: the judge's score ``f``, the mean human score ``y`` (NaN: no
    human) and, for a study, how the item came to humans (``drawn_by``)."""
    y = clean[clean["rater_kind"] == "human"].groupby(["metric", "item_id"])["score"].mean().rename("y")
    j = clean[clean["rater_kind"] == "judge"].rename(columns={"rater": "judge", "score": "f"})
    keep = ["judge", "item_id", "metric", "language", "f"] + (["drawn_by"] if "drawn_by" in j.columns else [])
    return j[keep].join(y, on=["metric", "item_id"])


def _ppi(scores: pd.DataFrame, specs: dict, cfg: ReportConfig) -> pd.DataFrame:
    """PPI++ of the mean human score and of the share acceptable, per judge x metric x language."""
    parts = []
    for target in ("mean score", "share acceptable"):
        s = scores
        if target == "share acceptable":
            levels = s["metric"].map(lambda m: cfg.acceptable.get(m, specs[m].human.values[-1]))
            s = s.assign(y=(s["y"] >= levels).where(s["y"].notna()).astype(float), f=(s["f"] >= levels).astype(float),
                         level=levels)
        estimate = ppi_by_provenance if "drawn_by" in s.columns else ppi_means
        res = estimate(s[s["y"].notna()], s[s["y"].isna()], by=CELL).cells
        if target == "share acceptable":
            res = res.merge(s.groupby(CELL)["level"].first().rename("acceptable_at").reset_index(), on=CELL)
        parts.append(res.assign(target=target))
    out = pd.concat(parts, ignore_index=True)
    out["labels_saved"] = out["n_effective"] - out["n_labelled"]
    return out


def _escalation(clean: pd.DataFrame, specs: dict, cfg: ReportConfig) -> tuple[pd.DataFrame, str | None]:
    """Thresholds per judge x metric x language from the judges' probabilities, or why there are none."""
    j = clean[clean["rater_kind"] == "judge"]
    if "probs" not in j.columns or not j["probs"].notna().any():
        return pd.DataFrame(), "no judge confidence: the judges gave no probabilities (judge.logprobs), so no threshold"
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


def _bias(clean: pd.DataFrame, cfg: ReportConfig) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """Bias by length bin (table + trend) and self-preference, per judge x metric."""
    humans = clean[clean["rater_kind"] == "human"][["item_id", "metric", "score"]].rename(columns={"score": "human"})
    judged = clean[clean["rater_kind"] == "judge"].rename(columns={"rater": "judge_name", "score": "judge"})
    pairs = judged.merge(humans, on=["item_id", "metric"])  # bias.py's columns: judge and human scores
    fam = cfg.model_families
    tables, trends, selfpref = [], [], []
    for (judge, metric), sub in pairs.groupby(["judge_name", "metric"], sort=True):
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
    judged = clean[clean["rater_kind"] == "judge"]
    if judged.empty:
        return {}, {"note": "no judge ratings: no decision statistics"}
    scores = _item_scores(clean)
    ppi = _ppi(scores, specs, cfg)
    esc, esc_note = _escalation(clean, specs, cfg)
    length_bias, trends, selfpref = _bias(clean, cfg)
    frames = {"ppi": ppi, "escalation": esc, "length_bias": length_bias, "length_trend": pd.DataFrame(trends),
              "self_preference": pd.DataFrame(selfpref)}
    summary = {"escalation_target": cfg.escalation_target, "escalation_delta": cfg.escalation_delta,
               "escalation_note": esc_note, "panel": panel or {"note": "fewer than two judges scored the same items"},
               **{name: _records(f) for name, f in frames.items()}}
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
    j = clean[clean["rater_kind"] == "judge"]
    shared = j.groupby(["metric", "item_id"])["rater"].transform("nunique") >= 2
    return sorted(np.unique(j.loc[shared, "rater"]).tolist())
