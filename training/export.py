"""Export accepted items and revision pairs as Hugging Face datasets (``export/`` in the study).

`export` writes ``export/accepted/`` and ``export/revisions/``, each a dataset directory that
``datasets.load_dataset(DIR)`` reads: ``data/train.parquet`` (written through `studytables`)
and a ``README.md`` dataset card whose YAML front matter holds the counts per language, task and
metric, the acceptance rule and the provenance (study, rubric and version, judges, kasauti
version, SHA-256 of the input tables). Everything is written into ``export.tmp/`` first and
swapped in at the end, so a failed export leaves the previous one whole.

Acceptance (`ExportConfig`): every rule over the human consensus (humans' submitted ratings)
must hold. Items no human rated may be decided by the calibrated judge, but only in metric x
language cells whose verdict in ``report/report.json`` allows it; the report must be newer than
the ratings and judgments. Each item says why it was accepted (``accepted_by``, ``evidence``).

Revision pairs: the original item -> each annotator's submitted revised response, with that
annotator's ratings of the original. Annotators post-edit a pre-filled box, so a revision equal
to the original after whitespace normalisation is no revision. External pairs (MIDB's shape)
come in through `external_pairs`. Every revision read is either exported or counted with its
reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

import studytables as st
from rubrics import RubricSet
from sampling.languages import UnknownLanguage, normalise

from .config import ExportConfig, MetricRule
from .pairs import RevisionPair, Triple, select_top

TRIPLE = ("instruction", "input", "response")
EXTERNAL_COLUMNS = ("language",) + tuple(f"{side}_{f}" for side in ("original", "revised") for f in TRIPLE)

NOT_SUBMITTED = "not submitted (draft or discarded)"
NOT_REVISED = "no revised response"
UNCHANGED = "revision equals the original after whitespace normalisation (pre-fill left unchanged)"
UNKNOWN_ITEM = "item not in sample.parquet"
BELOW_TOP_SHARE = "below the top share by edit distance"


class ExportError(ValueError):
    """An export that cannot be made; the message is one line and says what to do."""


class NoAcceptedItems(ExportError):
    """No item meets the acceptance rule (the message names the rule and the counts)."""


@dataclass
class ExportResult:
    """Where the export went, what it holds, and what was not exported and why."""

    path: Path
    accepted: int
    revisions: int
    rejected: dict[str, int] = field(default_factory=dict)
    revisions_not_exported: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def export(root: str | Path, config: ExportConfig, rubric_set: RubricSet, study_name: str,
           external: pd.DataFrame | None = None) -> ExportResult:
    """Write ``ROOT/export/accepted/`` and ``ROOT/export/revisions/`` from the study's tables.

    `external`: extra revision pairs from `external_pairs`. Raises `NoAcceptedItems` when no item
    meets the rule and `ExportError` for missing or unusable inputs; nothing is written then.
    """
    root = Path(root)
    try:
        config.check(rubric_set)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    inputs = {"sample.parquet": root / st.SAMPLE.file, "ratings.parquet": root / st.RATINGS.file}
    if not inputs["ratings.parquet"].is_file():
        raise ExportError(f"{inputs['ratings.parquet']}: no human ratings; run `kasauti pull` once annotators have "
                          "submitted, then export again")
    sample = _read(st.SAMPLE, inputs["sample.parquet"])
    ratings = _read(st.RATINGS, inputs["ratings.parquet"])
    humans = ratings[(ratings["rater_kind"] == "human") & ratings["status"].fillna("submitted").eq("submitted")]
    notes: list[str] = []
    stray = humans["item_id"][~humans["item_id"].isin(sample["item_id"])]
    if len(stray):
        notes.append(f"ratings.parquet: {len(stray)} submitted human ratings of {stray.nunique()} item(s) not in "
                     f"sample.parquet, not used (e.g. {stray.iloc[0]!r})")

    decided, rejected = _by_humans(sample, humans, config)
    judges = pd.DataFrame()
    if config.judge is not None:
        judges = _read(st.JUDGMENTS, root / st.JUDGMENTS.file) if (root / st.JUDGMENTS.file).is_file() else judges
        unrated = sample[~sample["item_id"].isin(humans["item_id"])]
        by_judge, judge_rejected, report = _by_judge(root, unrated, judges, config, rubric_set)
        decided = pd.concat([decided, by_judge], ignore_index=True)
        rejected = {k: v for k, v in rejected.items() if k != _NO_HUMAN} | judge_rejected
        inputs |= {"judgments.parquet": root / st.JUDGMENTS.file, "report/report.json": report}
    if decided.empty:
        raise NoAcceptedItems(f"no item of {len(sample)} meets the acceptance rule ({config.text()}); "
                              f"{_reasons(rejected)}")
    accepted = sample.merge(decided, on="item_id").sort_values(["language", "task", "item_id"], kind="stable")

    pairs, not_exported = _study_pairs(root, sample, humans, notes)
    inputs["revisions.parquet"] = root / st.REVISIONS.file
    if external is not None:
        pairs = pd.concat([pairs, external], ignore_index=True)
    pairs, dropped = _select(pairs, config.top_share)
    not_exported |= {why: n for why, n in dropped.items() if n}

    provenance = _provenance(study_name, rubric_set, judges, inputs, external)
    out, tmp = root / "export", root / "export.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_dataset(tmp, st.EXPORT_ACCEPTED, accepted[st.EXPORT_ACCEPTED.names], config.text(), provenance,
                       _counts(accepted, "decided_by", "evidence"), {"not accepted": rejected})
        if len(pairs):
            _write_dataset(tmp, st.EXPORT_REVISIONS, pairs[st.EXPORT_REVISIONS.names], _pairs_rule(config),
                           provenance, _counts(pairs, "source", "ratings"),
                           {"not exported": not_exported})
        else:
            notes.append(f"no revision pairs to export ({_reasons(not_exported) or 'none read'}); export/revisions/ "
                         "is not written")
        _swap(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(out, len(accepted), len(pairs), rejected, not_exported, notes)


def external_pairs(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """External revision pairs (e.g. MIDB's) as rows of the revisions export, labelled `source`.

    `frame` needs `EXTERNAL_COLUMNS` (text; a null input is empty); ``item_id`` and ``task`` are
    taken when present. Any distance column is ignored: the edit distance is computed here.
    Raises `ExportError` naming `source`, the row (1-based) and the column of a bad value.
    """
    missing = [c for c in EXTERNAL_COLUMNS if c not in frame.columns]
    if missing:
        raise ExportError(f"{source}: missing column(s) {missing}; external revision pairs need "
                          f"{list(EXTERNAL_COLUMNS)}")
    data = frame.reset_index(drop=True)
    out = pd.DataFrame({"item_id": [f"{source}/{i}" for i in range(1, len(data) + 1)], "annotator": None,
                        "source": source, "task": None, "ratings": None, "comment": None})
    for col in (*EXTERNAL_COLUMNS, *(c for c in ("item_id", "task") if c in data)):
        values = data[col].astype(object).where(data[col].notna(), "" if col.endswith("_input") else None)
        for row, value in enumerate(values, 1):
            if not isinstance(value, str) and not (col == "task" and value is None):
                raise ExportError(f"{source}: row {row}, column {col!r}: expected text, found {value!r}; "
                                  "fix or remove the row")
        out[col] = values
    if out["item_id"].duplicated().any():
        twice = out["item_id"][out["item_id"].duplicated()].iloc[0]
        first, second = out.index[out["item_id"] == twice][:2] + 1
        raise ExportError(f"{source}: rows {first} and {second}, column 'item_id': the same id {twice!r} twice; "
                          "give each pair its own id")
    for row, label in enumerate(out["language"], 1):
        try:
            out.loc[row - 1, "language"] = normalise(label)
        except UnknownLanguage as exc:
            raise ExportError(f"{source}: row {row}, column 'language': {exc}; give an ISO 639 code or a "
                              "language name") from None
    return out


def push_to_hub(dataset_dir: str | Path, repo_id: str, endpoint: str | None = None) -> str:
    """Upload one exported dataset directory to the Hub as dataset `repo_id`; returns its URL.

    Needs a write token in ``HF_TOKEN`` and a Hub that answers; otherwise `ExportError` (the
    token never appears in it) and nothing local is touched.
    """
    dataset_dir = Path(dataset_dir)
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ExportError(f"push {repo_id}: no HF_TOKEN in the environment; nothing pushed, the export stays in "
                          f"{dataset_dir}; set HF_TOKEN to a write token and push again")
    from huggingface_hub import HfApi, errors

    api = HfApi(endpoint=endpoint, token=token)
    # the Hub's HTTP client errors (httpx's in huggingface_hub >= 1; requests' are OSErrors)
    refused = (errors.HfHubHTTPError, getattr(errors, "HTTPError", OSError), OSError)
    try:
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        api.upload_folder(folder_path=dataset_dir, repo_id=repo_id, repo_type="dataset")
    except refused as exc:
        raise ExportError(f"push {repo_id}: the Hugging Face Hub at {api.endpoint} did not accept the upload "
                          f"({type(exc).__name__}); nothing lost, the export stays in {dataset_dir}; check the network "
                          "and the token's write access, then push again") from None
    return f"{api.endpoint}/datasets/{repo_id}"


def _read(table: st.Table, path: Path) -> pd.DataFrame:
    try:
        return st.read(table, path)
    except st.TableError as exc:
        raise ExportError(str(exc)) from None


_NO_HUMAN = "no human rating"


def _consensus(humans: pd.DataFrame, rule: MetricRule) -> pd.DataFrame:
    """Per item: the consensus of its submitted human scores on the rule's metric, and their number."""
    scores = humans[humans["metric"] == rule.metric].groupby("item_id")["score"]
    return scores.agg(value=rule.consensus, n="size")


def _by_humans(sample: pd.DataFrame, humans: pd.DataFrame, config: ExportConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """Items whose human consensus meets every rule, with their evidence; counts of the others by first failed rule."""
    items = sample["item_id"]
    rated = items.isin(humans["item_id"])
    reason = pd.Series(np.where(rated, "", _NO_HUMAN), index=items.index, dtype=object)
    evidence: dict[str, dict] = {i: {} for i in items[rated]}
    for rule in config.accept:
        cons = _consensus(humans, rule).reindex(items)
        n = cons["n"].fillna(0).to_numpy()
        value = cons["value"].to_numpy()
        few = (n < rule.min_raters) & (reason == "").to_numpy()
        reason[few] = f"{rule.metric}: fewer than {rule.min_raters} human ratings"
        miss = ~rule.passes(value) & (reason == "").to_numpy()
        reason[miss] = f"{rule.metric}: {rule.consensus} " + (
            f"below {rule.at_least:g}" if rule.at_most is None else f"above {rule.at_most:g}")
        for item, v, k in zip(items, value, n):
            if item in evidence and k:
                evidence[item][rule.metric] = {"consensus": rule.consensus, "value": float(v), "n_raters": int(k)}
    ok = reason == ""
    decided = pd.DataFrame({"item_id": items[ok], "decided_by": "humans",
                            "accepted_by": " and ".join(r.text() for r in config.accept),
                            "evidence": [json.dumps(evidence[i], ensure_ascii=False) for i in items[ok]]})
    return decided, dict(Counter(reason[~ok]))


def _by_judge(root: Path, unrated: pd.DataFrame, judgments: pd.DataFrame, config: ExportConfig,
              rubric_set: RubricSet) -> tuple[pd.DataFrame, dict[str, int], Path]:
    """Items no human rated whose calibrated judge score meets every rule in cells the report's verdicts allow."""
    from reports.calibration import judge_input
    from reports.ratings import judgments_to_long

    fallback = config.judge
    report = root / "report" / "report.json"
    if judgments.empty:
        raise ExportError(f"{root / st.JUDGMENTS.file}: no judgments; run `kasauti judge` and `kasauti report`, or "
                          "drop `judge` from the export rule")
    if not report.is_file():
        raise ExportError(f"{report}: no report; the judge may decide only where the report's verdict allows it: run "
                          "`kasauti report` first")
    newer = [p.name for p in (root / st.RATINGS.file, root / st.JUDGMENTS.file)
             if p.stat().st_mtime_ns > report.stat().st_mtime_ns]
    if newer:
        raise ExportError(f"{report}: older than {' and '.join(newer)}; run `kasauti report` again so its verdicts "
                          "cover the current ratings")
    try:
        doc = json.loads(report.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{report}: not valid JSON (truncated?): {exc}; run `kasauti report` again") from None
    verdicts = {(v["metric"], v["language"]): v for v in doc.get("verdicts", []) if v["judge"] == fallback.judge}
    if not verdicts:
        known = sorted({v["judge"] for v in doc.get("verdicts", [])})
        raise ExportError(f"{report}: no verdicts for judge {fallback.judge!r} (the report has {known}); name one of "
                          "them in the export rule's `judge`")
    maps = {(c["metric"], c["language"]): c for c in doc.get("calibration", [])
            if c["judge"] == fallback.judge and c.get("mapping")}
    long = judgments_to_long(judgments)
    long = long[long["rater"] == fallback.judge].drop_duplicates(["item_id", "metric"])
    long = long.assign(x=judge_input(long)).set_index(["item_id", "metric"])
    levels = {m.name: np.array(m.human.values, dtype=float) for f in rubric_set.families for m in f.metrics}

    rows, rejected = [], Counter()
    for item, language in zip(unrated["item_id"], unrated["language"]):
        evidence, why = {}, ""
        for rule in config.accept:
            cell = verdicts.get((rule.metric, language))
            if cell is None or cell["verdict"] not in fallback.verdicts:
                why = f"{rule.metric}: no human rating, and the judge is not allowed in {rule.metric} x {language} " \
                      f"(verdict: {cell['verdict'] if cell else 'none'})"
                break
            if (item, rule.metric) not in long.index:
                why = f"{rule.metric}: no human rating and no judge score"
                break
            j = long.loc[(item, rule.metric)]
            fit = maps.get((rule.metric, language)) or maps.get((rule.metric, "all"))
            if fit is not None:
                grid = sorted(fit["mapping"].items(), key=lambda kv: float(kv[0]))
                mapped = np.interp(j["x"], [float(k) for k, _ in grid], [v for _, v in grid])
                score = float(levels[rule.metric][np.abs(levels[rule.metric] - mapped).argmin()])
            elif cell["verdict"] == "usable as is":
                score = float(j["score"])
            else:
                why = f"{rule.metric}: no calibration map for {fallback.judge} in the report"
                break
            if not rule.passes(score):
                why = f"{rule.metric}: calibrated judge score not {rule.bound}"
                break
            evidence[rule.metric] = {"judge": fallback.judge, "judge_score": float(j["raw_score"]),
                                     "judge_input": float(j["x"]), "calibrated_score": score,
                                     "calibration": fit["note"] if fit else "none (verdict: usable as is)",
                                     "verdict": cell["verdict"], "cell": {"metric": rule.metric, "language": language}}
        if why:
            rejected[why] += 1
        else:
            rows.append({"item_id": item, "evidence": json.dumps(evidence, ensure_ascii=False)})
    rule_text = f"{fallback.text()}: " + " and ".join(f"calibrated {r.metric} {r.bound}" for r in config.accept)
    decided = pd.DataFrame(rows, columns=["item_id", "evidence"]).assign(decided_by="judge", accepted_by=rule_text)
    return decided, dict(rejected), report


def _study_pairs(root: Path, sample: pd.DataFrame, humans: pd.DataFrame,
                 notes: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The study's revision pairs, and the revisions not used, by reason."""
    path = root / st.REVISIONS.file
    if not path.is_file():
        notes.append(f"{path}: no revisions.parquet in the study (`kasauti pull` writes it once annotators have "
                     "responded); no study revision pairs")
        return pd.DataFrame(columns=st.EXPORT_REVISIONS.names), {}
    rev = _read(st.REVISIONS, path).merge(
        sample[["item_id", "task", "prompt", "context", "response"]].rename(columns={"task": "item_task"}),
        on="item_id", how="left", indicator=True)
    reason = pd.Series("", index=rev.index, dtype=object)
    for why, bad in ((NOT_SUBMITTED, rev["status"] != "submitted"),
                     (NOT_REVISED, rev["revised_response"].fillna("").str.strip() == ""),
                     (UNKNOWN_ITEM, rev["_merge"] != "both")):
        reason[bad & (reason == "")] = why
    rev = rev[reason == ""]
    scores = {key: json.dumps(dict(zip(g["metric"], g["score"].astype(float))), ensure_ascii=False)
              for key, g in humans.groupby(["item_id", "rater"])}
    original = [rev["prompt"], rev["context"].fillna(""), rev["response"]]
    pairs = pd.DataFrame({
        "item_id": rev["item_id"], "annotator": rev["annotator"], "source": "study", "language": rev["language"],
        "task": rev["task"].fillna(rev["item_task"]),
        **{f"original_{f}": v for f, v in zip(TRIPLE, original)},
        **{f"revised_{f}": v for f, v in zip(TRIPLE, original[:2] + [rev["revised_response"]])},
        "ratings": [scores.get((i, a)) for i, a in zip(rev["item_id"], rev["annotator"])],
        "comment": rev["comment"],
    })
    return pairs, dict(Counter(reason[reason != ""]))


def _select(pairs: pd.DataFrame, share: float) -> tuple[pd.DataFrame, dict[str, int]]:
    """Each source's `share` most-edited pairs per language, with their edit distance, most edited first;
    and the numbers left out as unchanged (after whitespace normalisation) and as below the top share."""
    keys, chosen, kept = [], {}, []
    for r in pairs.to_dict("records"):
        keys.append("\x1f".join((r["source"], r["item_id"], str(r["annotator"]))))
        if any(" ".join(r[f"original_{f}"].split()) != " ".join(r[f"revised_{f}"].split()) for f in TRIPLE):
            kept.append(RevisionPair(item_id=keys[-1], language=r["language"],
                                     original=Triple(*(r[f"original_{f}"] for f in TRIPLE)),
                                     revised=Triple(*(r[f"revised_{f}"] for f in TRIPLE))))
    for source in pairs["source"].unique():
        top = select_top([p for p in kept if p.item_id.startswith(source + "\x1f")], share)
        chosen |= {p.item_id: p.distance for p in top}
    out = pairs.assign(edit_distance=[chosen.get(k) for k in keys]).loc[np.array([k in chosen for k in keys], bool)]
    out = out.sort_values(["source", "language", "edit_distance", "item_id"], ascending=[True, True, False, True],
                          kind="stable")
    return out, {UNCHANGED: len(pairs) - len(kept), BELOW_TOP_SHARE: len(kept) - len(out)}
def _pairs_rule(config: ExportConfig) -> str:
    return (f"the top {config.top_share:g} of each source's revision pairs per language by edit distance; a study "
            "revision counts when submitted and different from the original after whitespace normalisation")


def _reasons(counts: dict[str, int]) -> str:
    return "; ".join(f"{reason}: {n}" for reason, n in counts.items())


def _counts(df: pd.DataFrame, by: str, metrics: str) -> dict:
    """Rows per language, task, `by` and metric (the keys of the JSON objects in column `metrics`)."""
    per_metric = Counter(m for text in df[metrics] if text for m in json.loads(text))
    return {"rows": len(df), "language": dict(Counter(df["language"])),
            "task": dict(Counter(df["task"].fillna("(none)"))), by: dict(Counter(df[by])), "metric": dict(per_metric)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _provenance(study: str, rubric_set: RubricSet, judgments: pd.DataFrame, inputs: dict[str, Path],
                external: pd.DataFrame | None) -> dict:
    files = {name: _sha256(path) for name, path in sorted(inputs.items()) if path.is_file()}
    if external is not None:
        text = json.dumps(external.astype(object).where(external.notna(), None).to_dict("records"), ensure_ascii=False)
        files["external pairs"] = hashlib.sha256(text.encode()).hexdigest()
    judges = [] if judgments.empty else (
        judgments[["judge", "model", "prompt_hash"]].drop_duplicates().sort_values(["judge", "prompt_hash"])
        .to_dict("records"))
    try:
        kasauti_version = version("kasauti")
    except PackageNotFoundError:
        kasauti_version = "unknown"
    combined = hashlib.sha256("".join(f"{k}\0{v}\0" for k, v in files.items()).encode()).hexdigest()
    return {"study": study, "rubric": rubric_set.name, "rubric_version": rubric_set.version, "judges": judges,
            "kasauti_version": kasauti_version, "inputs_sha256": combined, "input_files_sha256": files}


def _write_dataset(out: Path, table: st.Table, data: pd.DataFrame, rule: str, provenance: dict, counts: dict,
                   left_out: dict) -> None:
    """One dataset directory: its Parquet file through `studytables` and its README.md card."""
    parquet = out / Path(table.file).relative_to("export")
    parquet.parent.mkdir(parents=True, exist_ok=True)
    st.write(table, data, parquet)
    from huggingface_hub import DatasetCard, DatasetCardData

    home = out / parquet.relative_to(out).parts[0]
    meta = DatasetCardData(
        language=sorted(counts["language"]), tags=["kasauti"],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": str(parquet.relative_to(home))}]}],
        kasauti={"table": table.name, "rule": rule, "counts": counts, **left_out, "provenance": provenance})
    body = (f"# {provenance['study']}: {table.doc.split(';')[0]}\n\nRows: {counts['rows']}; exported by kasauti "
            f"{provenance['kasauti_version']} from study `{provenance['study']}` (rubric {provenance['rubric']} "
            f"v{provenance['rubric_version']}).\n\nRule: {rule}.\n\nColumns:\n\n" + st.markdown(table))
    DatasetCard(f"---\n{meta.to_yaml()}\n---\n\n{body}").save(home / "README.md")


def _swap(tmp: Path, out: Path) -> None:
    """Replace `out` by `tmp`; the old export is removed only once the new one is in place."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
