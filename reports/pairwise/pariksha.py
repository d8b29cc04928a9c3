"""Importer for PARIKSHA round 1's pairwise release (``<root>/pairwise/``) into the long pairwise format.

Files (see the release README): ``human/<language>_pairwise_ratings.tsv`` (pairing_id,
annotator_id, battle_outcome 0/1/2, justification_native), ``gpt4/battle_outcomes_<language>.json``
(a list of {pairing_id, battle_outcome A/B/C, justification}; C = tie) and ``pairings.csv``
(pairing_id, prompt_id, language, model1 = shown as A, model2 = shown as B, is_duplicated,
duplicate_id, source_file). Only pairings listed in ``pairings.csv`` say which models they
compare; rows of other pairings are counted as not joined (no other file of the release names
those ids).

The human codes are not documented upstream, so :func:`establish_coding` derives them from the
data: of the six ways to read 0/1/2 as A better / B better / tie, the tie code is the one that
makes annotators' swapped repeats most consistent (a mirror reading of A and B is equally
consistent), and the direction is the one that agrees most with GPT-4 on the same pairings.
The import stops with an error when no reading is best on both counts.

Comparisons follow ``comparisons.parquet``: ``model_a`` is the alphabetically first model of the
pairing, ``shown_order`` says whether it was shown first (as A), ``outcome`` is in terms of
``model_a``/``model_b``; one criterion, ``overall``. ``length_a``/``length_b`` (grapheme units, from
``responses/``) are added for the length-bias analysis (null when the response is not there).
"""

from __future__ import annotations

import json
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd

import studytables
from sampling import grapheme_lengths
from studytables import COMPARISONS

from ..ratings import ImportReport
from ..ratings import pariksha_language as _language

JUDGE = "gpt-4 (PARIKSHA)"
CRITERION = "overall"
SHOWN_TERMS = ("A", "B", "tie")  # the response shown first is better, the second is, a tie
FLIP = {"A": "B", "B": "A", "tie": "tie"}  # the same verdict with the order shown swapped
GPT4_CODES = {"A": "A", "B": "B", "C": "tie"}
HUMAN_CODES = ("0", "1", "2")
PAIRING_COLUMNS = ("pairing_id", "prompt_id", "language", "model1", "model2", "is_duplicated", "duplicate_id")


def _pairing_files(folder: Path) -> list[tuple[Path, pd.DataFrame]]:
    """``pairings.csv`` and any upstream pairing files (``pairings/**/*.json``), all values as text."""
    files = [folder / "pairings.csv"] if (folder / "pairings.csv").is_file() else []
    files += sorted((folder / "pairings").rglob("*.json"))
    if not files:
        raise FileNotFoundError(f"{folder}: no pairings.csv and no pairings/**/*.json; the release lists its pairings there")
    out = []
    for path in files:
        if path.suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
                raise ValueError(f"{path}: expected a JSON list of pairings ({{pairing_id, prompt_id, language, model1, model2, ...}})")
            frame = pd.DataFrame([{k: "" if v is None else str(v) for k, v in x.items()} for x in data])
        missing = [c for c in PAIRING_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected {list(PAIRING_COLUMNS)}")
        out.append((path, frame[list(PAIRING_COLUMNS)].assign(file=path.name)))
    return out


def _read_pairings(folder: Path, report: ImportReport) -> pd.DataFrame:
    """The listed pairings, checked; a pairing listed in several files with the same models is kept once,
    with different prompt or models in none of them."""
    frames = []
    for path, p in _pairing_files(folder):
        bad = []
        for col in ("pairing_id", "prompt_id", "model1", "model2"):
            bad += [(r, col, "a value") for r in np.flatnonzero((p[col].str.strip() == "").to_numpy())]
        bad += [(r, "is_duplicated", "True or False") for r in np.flatnonzero(~p["is_duplicated"].isin(["True", "False"]).to_numpy())]
        bad += [(r, "model2", "a model other than model1") for r in np.flatnonzero((p["model1"] == p["model2"]).to_numpy())]
        report.counts["pairings_read"] = report.counts.get("pairings_read", 0) + len(p)
        _bad_values(report, path, bad, "pairings")
        frames.append(p.assign(row=np.arange(1, len(p) + 1)).drop(index=p.index[sorted({r for r, _, _ in bad})]))
    p = pd.concat(frames, ignore_index=True)
    definition = p["prompt_id"] + "\0" + p["model1"] + "\0" + p["model2"]
    conflict = (definition.groupby(p["pairing_id"]).transform("nunique") > 1).to_numpy()
    report.add("pairings listed with different prompts or models in different rows", int(conflict.sum()), "excluded",
               [f"{f}: row {r}" for f, r in p.loc[conflict, ["file", "row"]].itertuples(index=False)])
    again = p["pairing_id"].duplicated().to_numpy() & ~conflict
    report.add("pairings listed more than once with the same prompt and models", int(again.sum()), "kept once",
               [f"{f}: row {r}" for f, r in p.loc[again, ["file", "row"]].itertuples(index=False)])
    p = p[~conflict & ~again].drop(columns="row")
    p["language"] = [_language(x, f"pairing {i}: column 'language'") for i, x in zip(p["pairing_id"], p["language"])]
    p["is_duplicated"] = p["is_duplicated"] == "True"
    return p


def _bad_values(report: ImportReport, path: Path, bad: list[tuple[int, str, str]], what: str) -> None:
    """Count bad values, each named as file, row (1-based, header not counted), column and what was expected."""
    report.add(f"{what} rows with a bad value", len({r for r, _, _ in bad}), "excluded",
               [f"{path.name}: row {r + 1}, column {c!r}: expected {e}" for r, c, e in sorted(bad)])


def _read_humans(folder: Path, report: ImportReport) -> pd.DataFrame:
    files = sorted(folder.glob("*_pairwise_ratings.tsv"))
    if not files:
        raise FileNotFoundError(f"{folder}: no <language>_pairwise_ratings.tsv files")
    frames = []
    for path in files:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
        missing = [c for c in ("pairing_id", "annotator_id", "battle_outcome") if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected pairing_id, annotator_id, battle_outcome")
        code = df["battle_outcome"].str.strip()
        bad = [(r, "battle_outcome", f"one of {list(HUMAN_CODES)}, found {code.iloc[r]!r}")
               for r in np.flatnonzero(~code.isin(HUMAN_CODES).to_numpy())]
        bad += [(r, c, "a value") for c in ("pairing_id", "annotator_id") for r in np.flatnonzero((df[c].str.strip() == "").to_numpy())]
        report.counts["human_rows_read"] = report.counts.get("human_rows_read", 0) + len(df)
        _bad_values(report, path, bad, "human")
        just = df.get("justification_native", pd.Series("", index=df.index)).str.strip()
        frames.append(pd.DataFrame({"pair_id": df["pairing_id"].str.strip(), "rater": df["annotator_id"].str.strip(),
                                    "code": code, "justification": just.where(~just.isin(["", "none"]), None),
                                    "file_language": _language(path.name.split("_")[0], str(path)), "file": path.name,
                                    "row": np.arange(1, len(df) + 1)}).drop(index=df.index[sorted({r for r, _, _ in bad})]))
    return pd.concat(frames, ignore_index=True)


def _read_gpt4(folder: Path, report: ImportReport) -> pd.DataFrame:
    files = sorted(folder.glob("battle_outcomes_*.json"))
    if not files:
        raise FileNotFoundError(f"{folder}: no battle_outcomes_<language>.json files")
    rows = []
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of {{pairing_id, battle_outcome, justification}}")
        bad = []
        for n, entry in enumerate(data):
            verdict = entry.get("battle_outcome") if isinstance(entry, dict) else None
            if verdict not in GPT4_CODES or not entry.get("pairing_id"):
                bad.append((n, "battle_outcome" if isinstance(entry, dict) and entry.get("pairing_id") else "pairing_id",
                            f"pairing_id and battle_outcome one of {list(GPT4_CODES)}"))
                continue
            rows.append({"pair_id": str(entry["pairing_id"]).strip(), "shown": GPT4_CODES[verdict],
                         "justification": entry.get("justification") or None,
                         "file_language": _language(path.stem.rsplit("_", 1)[-1], str(path)), "file": path.name, "row": n + 1})
        report.counts["gpt4_rows_read"] = report.counts.get("gpt4_rows_read", 0) + len(data)
        _bad_values(report, path, bad, "gpt-4")
    return pd.DataFrame(rows, columns=["pair_id", "shown", "justification", "file_language", "file", "row"])


def establish_coding(humans: pd.DataFrame, gpt4: pd.DataFrame, pairings: pd.DataFrame) -> tuple[dict[str, str], pd.DataFrame]:
    """The reading of the human codes (code -> A / B / tie) the data support, and the evidence for all six.

    ``humans``: pair_id, rater, code; ``gpt4``: pair_id, shown (A/B/tie); ``pairings``: the listed
    pairings. Evidence per reading: ``self_consistency`` (an annotator's verdicts on a pairing and
    its swapped repeat name the same model, or both a tie) and ``gpt4_agreement`` (same verdict as
    GPT-4 on the pairing, in shown terms), with the numbers of comparisons behind them.
    """
    listed = pairings.set_index("pairing_id")
    dup = listed[listed["is_duplicated"] & listed["duplicate_id"].isin(listed.index)]
    left = humans.merge(dup[["duplicate_id", "model1"]], left_on="pair_id", right_index=True)
    both = left.merge(humans[["pair_id", "rater", "code"]], left_on=["duplicate_id", "rater"], right_on=["pair_id", "rater"],
                      suffixes=("", "_orig"))
    orig_first = listed["model1"].reindex(both["duplicate_id"]).to_numpy()
    same_first = both["model1"].to_numpy() == orig_first
    vs = humans.merge(gpt4[["pair_id", "shown"]], on="pair_id")
    rows = []
    for reading in permutations(SHOWN_TERMS):
        m = dict(zip(HUMAN_CODES, reading))
        x, y = both["code"].map(m).to_numpy(), both["code_orig"].map(m).to_numpy()
        y_in_x_terms = np.where(same_first, y, np.array([FLIP[v] for v in y], dtype=object)) if len(y) else y
        rows.append({"reading": ", ".join(f"{k}={v}" for k, v in m.items()),
                     "self_consistency": float(np.mean(x == y_in_x_terms)) if len(x) else np.nan,
                     "n_repeats": len(x),
                     "gpt4_agreement": float(np.mean(vs["code"].map(m).to_numpy() == vs["shown"].to_numpy())) if len(vs) else np.nan,
                     "n_with_gpt4": len(vs), "_map": m})
    ev = pd.DataFrame(rows)
    best = ev[(ev["self_consistency"] >= ev["self_consistency"].max() - 1e-12) & (ev["gpt4_agreement"] >= ev["gpt4_agreement"].max() - 1e-12)]
    if len(best) != 1:
        raise ValueError("pairwise human ratings: the data do not establish what battle_outcome 0/1/2 mean (no reading is "
                         "best on both self-consistency and agreement with GPT-4):\n" + ev.drop(columns="_map").to_string())
    return best["_map"].iloc[0], ev.drop(columns="_map")


def _lengths(root: Path) -> dict[tuple[str, str], int]:
    """(prompt_id, model) -> response length in grapheme units, from ``responses/``."""
    import pyarrow as pa

    from sampling.pariksha import flatten_responses

    resp = flatten_responses(root)
    lengths = grapheme_lengths(pa.array(resp["response"].fillna(""), pa.string())).to_numpy()
    return dict(zip(zip(resp["id"].str.rsplit("|", n=1).str[0], resp["model"]), lengths.tolist()))


def from_pariksha_pairwise(root: str | Path) -> tuple[pd.DataFrame, ImportReport, pd.DataFrame]:
    """Comparisons (``comparisons.parquet`` columns plus length_a, length_b), the import report, and the
    evidence for the human coding (:func:`establish_coding`).

    ``root``: the PARIKSHA round-1 directory (holding ``pairwise/`` and ``responses/``).
    Counts: rows read, joined and not joined by reason, per source; nothing is dropped unreported.
    """
    root = Path(root)
    folder = root / "pairwise"
    report = ImportReport(source=str(folder))
    pairings = _read_pairings(folder, report)
    humans = _read_humans(folder / "human", report)
    gpt4 = _read_gpt4(folder / "gpt4", report)
    coding, evidence = establish_coding(humans, gpt4, pairings)
    humans["shown"] = humans["code"].map(coding)
    frame = pd.concat([humans.assign(rater_kind="human"), gpt4.assign(rater=JUDGE, rater_kind="judge")], ignore_index=True)
    twice = frame.duplicated(["pair_id", "rater"]).to_numpy()
    report.add("second rating of a pairing by the same rater", int(twice.sum()), "excluded (the first is kept)",
               [f"{f}: row {r}" for f, r in frame.loc[twice, ["file", "row"]].itertuples(index=False)])
    frame = frame[~twice]
    listed = pairings.set_index("pairing_id")
    joined = frame["pair_id"].isin(listed.index).to_numpy()
    for kind, sub in frame[~joined].groupby("rater_kind"):
        report.add(f"{kind} rows whose pairing_id is in no pairing file", len(sub),
                   "not joined: which models they compare is unknown (add upstream's pairing files under "
                   "pairwise/pairings/ to join them)", [f"{f}: row {r}" for f, r in sub[["file", "row"]].head(5).itertuples(index=False)])
    j = frame[joined].join(listed[["prompt_id", "language", "model1", "model2"]], on="pair_id")
    other = (j["language"] != j["file_language"]).to_numpy()
    report.add("rows in a file named for another language than their pairing", int(other.sum()),
               "kept; the pairing's language is used", [f"{f}: row {r}" for f, r in j.loc[other, ["file", "row"]].head(5).itertuples(index=False)])
    swap = (j["model1"] > j["model2"]).to_numpy()
    model_a, model_b = np.where(swap, j["model2"], j["model1"]), np.where(swap, j["model1"], j["model2"])
    in_model_terms = {"A": "a", "B": "b", "tie": "tie"}
    outcome = j["shown"].map(in_model_terms).to_numpy()
    outcome = np.where(swap & (outcome != "tie"), np.where(outcome == "a", "b", "a"), outcome)
    lengths = _lengths(root)
    length_a = pd.array([lengths.get(k) for k in zip(j["prompt_id"], model_a)], dtype="Int64")
    length_b = pd.array([lengths.get(k) for k in zip(j["prompt_id"], model_b)], dtype="Int64")
    no_len = pd.isna(length_a) | pd.isna(length_b)
    report.add("joined comparisons whose responses are not in responses/", int(no_len.sum()),
               "kept; their lengths are null (left out of the length bias)", list(j.loc[no_len, "pair_id"].head(5)))
    out = pd.DataFrame({"pair_id": j["pair_id"].to_numpy(), "prompt_id": j["prompt_id"].to_numpy(), "language": j["language"].to_numpy(),
                        "model_a": model_a, "model_b": model_b, "criterion": CRITERION, "rater": j["rater"].to_numpy(),
                        "rater_kind": j["rater_kind"].to_numpy(), "outcome": outcome,
                        "shown_order": np.where(swap, "ba", "ab"), "probs": None,
                        "justification": j["justification"].to_numpy(), "status": "submitted",
                        "length_a": length_a, "length_b": length_b})
    out = studytables.conform(COMPARISONS, out, "PARIKSHA pairwise")
    for kind, name in (("human", "human"), ("judge", "gpt4")):
        report.counts[f"{name}_rows_joined"] = int((out["rater_kind"] == kind).sum())
        report.counts[f"{name}_rows_not_joined"] = int((frame["rater_kind"] == kind).sum()) - report.counts[f"{name}_rows_joined"]
    report.counts.update({"pairings_listed": len(pairings), "human_pairings_rated": int(humans["pair_id"].nunique()),
                          "human_justifications": int(out.loc[out["rater_kind"] == "human", "justification"].notna().sum())})
    return out, report, evidence
