"""The pairwise section of the report, from a comparisons frame (``comparisons.parquet`` columns).

Two models only (original vs boosted, base vs fine-tuned): the win rate of one over the other per
criterion, rater group and language (:mod:`reports.pairwise.winrate`). Per criterion: Bradley-Terry
leaderboards with ties (percentile CIs over prompts, resampled within language for the overall
board) per language and overall, for the humans (every annotator's
verdict is a comparison) and for each judge; leaderboard agreement of the humans and each judge
(Kendall tau-b, Spearman, Pearson, top-k, paired prompt bootstrap); agreement on pairs; position
consistency; first-position win rate; and length bias when ``length_a``/``length_b`` are given.
A cell that cannot be computed (too few shared models, no fit) is a row with a ``note``, never
dropped. Fits use a small Gaussian prior (``prior``, default 0.01, choix's ``alpha``): without
one, a model that never lost in a language has no finite score.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import leaderboard, pairs, winrate

HUMANS = "humans"
ALL = "all"
NEEDED = ("pair_id", "prompt_id", "language", "model_a", "model_b", "rater", "rater_kind", "outcome", "shown_order")


def _boards(frame: pd.DataFrame, criterion: str, opts: dict) -> tuple[list[pd.DataFrame], list[dict]]:
    """Leaderboards of the humans and of each judge, per language and overall."""
    groups = [(HUMANS, frame[frame["rater_kind"] == "human"])]
    groups += list(frame[frame["rater_kind"] == "judge"].groupby("rater"))
    tables, notes = [], []
    for who, g in groups:
        for language, sub in [(ALL, g)] + list(g.groupby("language")):
            key = {"criterion": criterion, "raters": who, "language": language}
            try:
                table, info = leaderboard.leaderboard(sub, strata="language" if language == ALL else None, **opts)
            except ValueError as exc:
                notes.append({**key, "note": str(exc)})
                continue
            tables.append(table.assign(**key, tie_parameter=info["tie_parameter"], n_prompts=info["n_prompts"],
                                       n_failed=info["n_failed"]))
    return tables, notes


def _agreement(frame: pd.DataFrame, criterion: str, k: int, opts: dict) -> list[dict]:
    """Leaderboard agreement of the humans and each judge, per language and overall."""
    humans = frame[frame["rater_kind"] == "human"]
    rows = []
    for judge, j in frame[frame["rater_kind"] == "judge"].groupby("rater"):
        for language in [ALL] + sorted(set(j["language"]) & set(humans["language"])):
            h = humans if language == ALL else humans[humans["language"] == language]
            jl = j if language == ALL else j[j["language"] == language]
            key = {"criterion": criterion, "judge": judge, "language": language}
            try:
                res = leaderboard.agreement(h, jl, k=k, strata="language" if language == ALL else None, **opts)
            except ValueError as exc:
                rows.append({**key, "statistic": None, "note": str(exc)})
                continue
            counts = {c: res.pop(c) for c in ("n_models", "n_prompts", "n_failed")}
            rows += [{**key, "statistic": stat, **v, **counts, "note": None} for stat, v in res.items()]
    return rows


def _pair_agreement(frame: pd.DataFrame, criterion: str, n_boot: int, seed: int, min_items: int) -> list[dict]:
    rows = []
    for language, sub in [(ALL, frame)] + list(frame.groupby("language")):
        res = pairs.agreement(sub, n_boot, seed, min_items)
        key = {"criterion": criterion, "language": language}
        rows += [{**key, "judge": None, "ties": "with", "statistic": s, **res["humans"][s]}
                 for s in ("fleiss_kappa", "percent_agreement")]
        for judge, r in res["judges"].items():
            rows += [{**key, "judge": judge, "ties": ties.split("_")[0], "statistic": s, **r[ties][s]}
                     for ties in ("with_ties", "without_ties") for s in ("accuracy", "cohen_kappa")]
    return rows


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-safe records (NaN -> null)."""
    return json.loads(frame.to_json(orient="records")) if len(frame) else []


def pairwise_report(comparisons: pd.DataFrame, model: str = "davidson", prior: float = 0.01, n_boot: int = 1000,
                    seed: int = 0, k: int = 3, min_items: int = 10) -> tuple[dict[str, pd.DataFrame], dict]:
    """All pairwise statistics of ``comparisons`` (submitted rows only, the others counted), as frames and as a JSON-able dict.

    Frames: ``win_rates`` (only when the comparisons involve exactly two models, e.g. original vs
    boosted: :func:`reports.pairwise.winrate.head_to_head`), ``leaderboards`` (criterion, raters, language, model, score, ci_low, ci_high, rank,
    rank_low, rank_high, n_comparisons, tie_parameter, n_prompts, n_failed), ``leaderboard_agreement``
    (criterion, judge, language, statistic, value, ci_low, ci_high, n_models, n_prompts, n_failed,
    note), ``pair_agreement``, ``consistency``, ``first_position``, ``length_bias`` (empty without
    lengths; rows with an unknown or zero length are left out of it and counted) and ``notes``
    (leaderboards that could not be fitted, and why). The dict holds the same records under the same
    names plus ``counts`` (rows read, used, not submitted, without usable lengths).
    """
    missing = [c for c in NEEDED if c not in comparisons.columns]
    if missing:
        raise ValueError(f"comparisons: missing column(s) {missing}; the pairwise report needs {list(NEEDED)} "
                         "(see ARCHITECTURE.md, comparisons.parquet)")
    status = comparisons["status"] if "status" in comparisons.columns else pd.Series("submitted", index=comparisons.index)
    submitted = comparisons.reset_index(drop=True)[(status == "submitted").to_numpy()]
    leaderboard.check(submitted)  # a draft, discarded row or failed judge call may lack its outcome
    used = submitted.reset_index(drop=True)
    opts = {"model": model, "prior": prior, "n_boot": n_boot, "seed": seed}
    out = {name: [] for name in ("win_rates", "leaderboards", "leaderboard_agreement", "pair_agreement", "consistency",
                                 "first_position", "length_bias", "notes")}
    heads = winrate.head_to_head(used, n_boot, seed)
    if heads is not None:
        out["win_rates"].append(heads)
    has_len = {"length_a", "length_b"} <= set(used.columns)
    no_len = ~((pd.to_numeric(used["length_a"]) > 0) & (pd.to_numeric(used["length_b"]) > 0)).fillna(False) if has_len \
        else pd.Series(True, index=used.index)
    for criterion, f in used.groupby("criterion") if "criterion" in used.columns else [("overall", used)]:
        tables, notes = _boards(f, criterion, opts)
        out["leaderboards"] += tables
        out["notes"].append(pd.DataFrame(notes))
        out["leaderboard_agreement"].append(pd.DataFrame(_agreement(f, criterion, k, opts)))
        out["pair_agreement"].append(pd.DataFrame(_pair_agreement(f, criterion, n_boot, seed, min_items)))
        for name, table in (("consistency", pairs.consistency(f)), ("first_position", pairs.first_position(f))):
            out[name].append(table.assign(criterion=criterion))
        with_len = f[~no_len.loc[f.index]]
        if len(with_len):
            out["length_bias"].append(pairs.length_bias(with_len).assign(criterion=criterion))
    frames = {name: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame() for name, parts in out.items()}
    counts = {"rows": len(comparisons), "rows_used": len(used), "rows_not_submitted": len(comparisons) - len(used),
              "rows_without_lengths": int(no_len.sum())}  # a length unknown or 0 (empty response): no length bias
    summary = {"model": model, "prior": prior, "n_boot": n_boot, "seed": seed, "top_k": k, "counts": counts,
               **{name: _records(table) for name, table in frames.items()}}
    return frames, summary


def write_pairwise(frames: dict[str, pd.DataFrame], summary: dict, out_dir: str | Path) -> dict[str, Path]:
    """``pairwise.json`` (the summary) and ``pairwise_<name>.csv`` per non-empty frame in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "pairwise.json"}
    paths["json"].write_text(json.dumps(summary, indent=1, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    for name, frame in frames.items():
        if len(frame):
            paths[name] = out / f"pairwise_{name}.csv"
            frame.to_csv(paths[name], index=False)
    return paths


def rank_figure(leaderboards: pd.DataFrame, criterion: str | None = None):
    """Human rank vs each judge's rank per model, with rank CIs, one panel per language (``all`` first).

    A point on the diagonal is a model both rank alike. Returns a plotly Figure.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    lb = leaderboards if criterion is None else leaderboards[leaderboards["criterion"] == criterion]
    languages = [ALL] + sorted(set(lb["language"]) - {ALL})
    cols = min(4, len(languages))
    rows = -(-len(languages) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=languages, horizontal_spacing=0.06, vertical_spacing=0.08)
    hum = lb[lb["raters"] == HUMANS]
    judges = sorted(set(lb["raters"]) - {HUMANS})
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    for i, language in enumerate(languages):
        r, c = i // cols + 1, i % cols + 1
        h = hum[hum["language"] == language].set_index("model")
        top = 1
        for n, judge in enumerate(judges):
            j = lb[(lb["raters"] == judge) & (lb["language"] == language)].set_index("model")
            both = h.merge(j, left_index=True, right_index=True, suffixes=("_h", "_j"))
            if both.empty:
                continue
            top = max(top, both["rank_high_h"].max(), both["rank_high_j"].max())
            fig.add_trace(go.Scatter(
                x=both["rank_h"], y=both["rank_j"], mode="markers", name=judge, legendgroup=judge, showlegend=i == 0,
                marker=dict(color=colours[n % len(colours)], size=7), text=both.index,
                error_x=dict(type="data", symmetric=False, array=both["rank_high_h"] - both["rank_h"],
                             arrayminus=both["rank_h"] - both["rank_low_h"], thickness=1),
                error_y=dict(type="data", symmetric=False, array=both["rank_high_j"] - both["rank_j"],
                             arrayminus=both["rank_j"] - both["rank_low_j"], thickness=1),
                hovertemplate="%{text}<br>human rank %{x}<br>judge rank %{y}<extra>" + judge + "</extra>"), row=r, col=c)
        fig.add_trace(go.Scatter(x=[1, top], y=[1, top], mode="lines", line=dict(color="#999", dash="dot", width=1),
                                 showlegend=False, hoverinfo="skip"), row=r, col=c)
    fig.update_xaxes(title_text="human rank", autorange="reversed")
    fig.update_yaxes(title_text="judge rank", autorange="reversed")
    fig.update_layout(title="Leaderboards: human vs judge ranks (95% prompt-bootstrap CIs)", height=320 * rows)
    return fig
