"""The report's input: one long table of ratings, its importers, and the checked join.

Long ratings format (ARCHITECTURE.md): one row per (item_id, metric, rater) with
``rater_kind`` (``human``/``judge``), ``score`` on the rubric's human scale, optional
``raw_score``, ``probs``, ``model``, ``prompt_version``, ``status`` and the item's
``language``, ``task`` and ``length_bin``. Importers return ``(ratings, items)``; items (one row
per item_id with language, task, length_bin) may be None when the ratings carry those columns.
:func:`prepare` joins and checks them: every rating or item that cannot be used is counted,
named and reported in an :class:`ImportReport`, never silently dropped.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import studytables
from rubrics import RubricSet
from studytables import JUDGMENTS, RATINGS, SAMPLE

LONG_COLUMNS = ["item_id", "metric", "rater", "rater_kind", "score", "raw_score", "probs", "model",
                "prompt_version", "language", "task", "length_bin", "status", "source_model"]
REQUIRED = RATINGS.required
ITEM_COLUMNS = ["item_id", "language", "task", "length_bin"]
WHERE = ["_file", "_row"]  # set by the importers: each rating's source file and 1-based row there
N_EXAMPLES = 5


@dataclass
class Issue:
    kind: str
    count: int
    action: str
    examples: list[str] = field(default_factory=list)
    invalid: bool = False  # a value that cannot be used (counts towards the excluded share)


@dataclass
class ImportReport:
    """What the import and join found: counts, named examples, and what was done about each."""

    source: str
    issues: list[Issue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    warning: str | None = None

    def add(self, kind: str, count: int, action: str, examples: list[str] | None = None, invalid: bool = False) -> None:
        if count:
            self.issues.append(Issue(kind, int(count), action, list(examples or [])[:N_EXAMPLES], invalid))

    @property
    def invalid(self) -> int:
        """Ratings excluded for invalid values."""
        return sum(i.count for i in self.issues if i.invalid)

    @property
    def invalid_share(self) -> float:
        """Share of the ratings read that were excluded for invalid values."""
        read = self.counts.get("ratings read", 0)
        return self.invalid / read if read else 0.0

    def check_invalid_share(self, limit: float) -> None:
        """Set :attr:`warning` when more than ``limit`` of the ratings read were invalid."""
        if self.invalid_share > limit:
            kinds = "; ".join(f"{i.kind}: {i.count}" for i in self.issues if i.invalid)
            self.warning = (f"{self.invalid} of {self.counts['ratings read']} ratings ({self.invalid_share:.0%}) were excluded as "
                            f"invalid ({kinds}), more than the {limit:.0%} allowed (report.max_excluded_share): every figure "
                            "rests on the rest only. Check the input's scale, metric names and columns")

    def to_dict(self) -> dict:
        return {"source": self.source, "counts": self.counts, "invalid_share": self.invalid_share,
                "warning": self.warning, "ignored_columns": self.ignored_columns,
                "issues": [vars(i) for i in self.issues]}

    def lines(self) -> list[str]:
        out = [f"{k}: {v}" for k, v in self.counts.items()]
        out += [f"{i.kind}: {i.count} ({i.action}); e.g. {', '.join(i.examples)}" for i in self.issues]
        if self.ignored_columns:
            out.append(f"columns not used by the report (ignored): {', '.join(self.ignored_columns)}")
        return out


def _located(df: pd.DataFrame, file: str | Path, rows=None) -> pd.DataFrame:
    """``df`` with the :data:`WHERE` columns: ``file`` (a categorical: one string, not one per row) and 1-based
    ``rows`` (default: 1..len)."""
    return df.assign(_file=pd.Categorical.from_codes(np.zeros(len(df), np.int8), [str(file)]),
                     _row=np.arange(1, len(df) + 1) if rows is None else rows)


# ---------------------------------------------------------------- importers


def read_long(path: str | Path) -> pd.DataFrame:
    """Ratings in the long format from a .csv (UTF-8) or .parquet file (see module doc for columns)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; give a .csv or .parquet file in the long ratings format")
    if path.suffix == ".parquet":
        df = _parquet(path)
    elif path.suffix == ".csv":
        try:
            # every value as text, only empty cells missing: prepare() parses and counts what is not a number
            df = pd.read_csv(io.StringIO(_utf8(path)), dtype=str, keep_default_na=False, na_values=[""])
        except pd.errors.EmptyDataError:
            raise ValueError(f"{path}: the file is empty; expected a header row and ratings in the long format") from None
        except pd.errors.ParserError as exc:
            raise ValueError(f"{path}: not a valid CSV file ({exc})") from None
    else:
        raise ValueError(f"{path}: expected a .csv or .parquet file in the long ratings format")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing required column(s) {missing}; the long format needs {REQUIRED}")
    return _located(df, path)


def _parquet(path: str | Path) -> pd.DataFrame:
    """A Parquet table as it is (an import: its values are checked, counted and excluded by :func:`prepare`);
    a ValueError naming the file when it cannot be read as one."""
    try:
        return pd.read_parquet(path)
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"{path}: cannot read as Parquet ({exc})") from None


def _json(path: Path):
    try:
        return json.loads(_utf8(path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def _utf8(path: Path) -> str:
    """The file's text; a ValueError naming the row of the first byte that is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        where = "header" if line == 1 else f"row {line - 1}"
        raise ValueError(f"{path}: {where}: byte {raw[exc.start]:#04x} is not UTF-8 text; "
                         "save the file as UTF-8 (e.g. from a spreadsheet: CSV UTF-8) and run again") from None


def drawn_by(item_ids: pd.Series, slices: str | Path | None, escalated) -> pd.Series:
    """How each item came to humans, for PPI and thresholds (`reports.ppi.left_out`): ``random`` for the random
    slice's items (``slices``: slices.parquet, when it exists), else ``escalated`` for the ``escalated`` item ids,
    else null (unknown)."""
    out = pd.Series(None, index=item_ids.index, dtype=object)
    out[item_ids.isin(set(escalated))] = "escalated"
    if slices is not None and Path(slices).exists():
        out[item_ids.isin(set(studytables.read(studytables.SLICES, slices, ["item_id"])["item_id"]))] = "random"
    return out


def from_study(sample: str | Path, ratings: str | Path | None, judgments: str | Path | None,
               slices: str | Path | None = None, escalated: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A study's own tables, read and checked through :mod:`studytables`: items from sample.parquet
    (with ``source_model`` when it has one), humans from ratings.parquet, judges from
    judgments.parquet (rows with status ``ok``; judge scale -> ``raw_score``, mapped -> ``score``).

    The items' ``drawn_by`` says how each came to humans, for PPI and thresholds (`reports.ppi.left_out`):
    ``random`` for the random slice's items (``slices``: slices.parquet, when it exists), else
    ``escalated`` for items humans rated when escalated (``escalated``: ratings_escalated.parquet,
    when it exists), else null (unknown)."""
    items = _read_study_table(SAMPLE, sample, ITEM_COLUMNS, optional=["source_model"])
    rated = studytables.read(RATINGS, escalated, ["item_id"])["item_id"] if escalated is not None and Path(escalated).exists() else ()
    items["drawn_by"] = drawn_by(items["item_id"], slices, rated)
    parts = []
    if ratings is not None and Path(ratings).exists():
        parts.append(_located(studytables.read(RATINGS, ratings, columns=[c for c in LONG_COLUMNS if c in RATINGS.names]), ratings))
    if judgments is not None and Path(judgments).exists():
        need = ["judge", "model", "prompt_hash", "item_id", "metric", "score", "human_score", "status"]
        parts.append(judgments_to_long(_read_study_table(JUDGMENTS, judgments, need, optional=["probs", "repeat"]), judgments))
    if not parts:
        raise FileNotFoundError(f"no ratings: neither {ratings} nor {judgments} exists")
    return pd.concat(parts, ignore_index=True), items


def _read_study_table(table: studytables.Table, path: str | Path, columns: list[str], optional: list[str]) -> pd.DataFrame:
    """`studytables.read` of ``columns`` and those of ``optional`` the file has (tables written by older versions lack them)."""
    try:
        present = pq.read_schema(path).names
    except (OSError, pa.ArrowException):
        present = []  # studytables.read names the problem
    return studytables.read(table, path, columns=columns + [c for c in optional if c in present])


def judgments_to_long(j: pd.DataFrame, path: str | Path = "judgments.parquet") -> pd.DataFrame:
    """judgments.parquet in the long format: one row per judge x item x metric x repeat, the lowest
    ``repeat`` first (:func:`prepare` uses it and reports the others as duplicates). Rows whose status
    is not ``ok`` keep it as their ``status``, so :func:`prepare` counts and names them."""
    need = ["judge", "model", "prompt_hash", "item_id", "metric", "score", "human_score", "status"]
    missing = [c for c in need if c not in j.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {need} (+ probs, repeat)")
    j = _located(j.reset_index(drop=True), path)
    ok = j.sort_values("repeat", kind="stable") if "repeat" in j.columns else j
    return pd.DataFrame({
        "item_id": ok["item_id"], "metric": ok["metric"], "rater": ok["judge"],
        "rater_kind": "judge", "score": ok["human_score"], "raw_score": ok["score"],
        "probs": ok["probs"] if "probs" in ok.columns else None, "model": ok["model"],
        "prompt_version": ok["prompt_hash"], "status": ok["status"].mask(ok["status"] == "ok", "submitted"),
        "_file": ok["_file"], "_row": ok["_row"],
    })


PARIKSHA_HUMAN = {"linguistic_acceptability": "ling_rating", "task_quality": "task_rating",
                  "hallucination": "hallucination_rating"}
PARIKSHA_JUDGE = {"linguistic_acceptability": "linguistic_acceptability", "task_quality": "task_quality",
                  "hallucination": "hallucinations"}
PARIKSHA_JUDGE_NAME = "gpt-4 (PARIKSHA)"


def pariksha_language(label: str, where: str) -> str:
    """The sampler's code for a PARIKSHA language name ('bengali' -> 'bn'); a ValueError naming ``where`` if unknown."""
    from sampling import UnknownLanguage, normalise

    try:
        return normalise(label)
    except UnknownLanguage as exc:
        raise ValueError(f"{where}: {exc}; expected a language name such as 'hindi'") from None


def from_pariksha(root: str | Path, n_length_bins: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, ImportReport]:
    """The PARIKSHA round-1 files: human TSVs, judge JSONs, items from the responses files.

    Languages are the sampler's codes (:func:`pariksha_language`). Length bins are quantiles of
    grapheme length per language x task over all responses, cut exactly as the sampler cuts them
    (`sampling.length_bins`), ``n_length_bins`` of them (default: the sampling config's
    ``length_bins``); an item's ``source_model`` is the model that wrote the response. A score that
    is not one of the files' labels is passed on as its text, for :func:`prepare` to exclude and
    name (file, row, column).
    """
    from sampling import grapheme_lengths, length_bins
    from sampling.config import SamplingConfig
    from sampling.pariksha import flatten_responses, item_id

    root = Path(root)
    bins = n_length_bins or SamplingConfig().length_bins
    report = ImportReport(source=str(root))
    resp = flatten_responses(root)
    codes = {label: pariksha_language(label, file) for label, file in
             resp.drop_duplicates("language")[["language", "source_file"]].itertuples(index=False)}
    resp["language"] = resp["language"].map(codes)
    resp["length"] = grapheme_lengths(pa.array(resp["response"].fillna(""), pa.string())).to_numpy()
    resp["length_bin"] = resp.groupby(["language", "task"])["length"].transform(lambda s: length_bins(s.to_numpy(), bins)[0])
    items = resp.rename(columns={"id": "item_id", "model": "source_model"})[ITEM_COLUMNS + ["source_model"]]
    rows, mislabelled = [], []
    item_language = dict(zip(items["item_id"], items["language"]))
    tsvs = sorted(Path(root, "human_ratings").glob("*.tsv"))
    if not tsvs:
        raise FileNotFoundError(f"{root / 'human_ratings'}: no .tsv files")
    for path in tsvs:
        df = pd.read_csv(io.StringIO(_utf8(path)), sep="\t", dtype=str, keep_default_na=False)
        missing = [c for c in ["model", "prompt_id", "worker_id", *PARIKSHA_HUMAN.values()] if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}")
        ids = [item_id(p, m) for p, m in zip(df["prompt_id"], df["model"])]
        try:
            file_language = pariksha_language(path.name.split("_")[0], path)
        except ValueError:  # a file name without a known language: every row is reported as mislabelled below
            file_language = path.name.split("_")[0]
        langs = pd.Series([item_language.get(i) for i in ids]).dropna()
        if (langs != file_language).any():
            found = ", ".join(f"{k} ({v} rows)" for k, v in langs[langs != file_language].value_counts().items())
            mislabelled.append((int((langs != file_language).sum()), f"{path.name} holds {found}"))
        for metric, col in PARIKSHA_HUMAN.items():
            for n, (iid, worker, raw) in enumerate(zip(ids, df["worker_id"], df[col]), start=1):
                score = _pariksha_score(raw, metric)
                rows.append((iid, metric, str(worker), "human", score, score, None, None, None, "submitted", path.name, n))
    for metric, folder in PARIKSHA_JUDGE.items():
        for path in sorted(Path(root, "judge_ratings", folder).glob("*.json")):
            for n, prompt in enumerate(_json(path), start=1):
                if not isinstance(prompt, dict) or "prompt_id" not in prompt:
                    raise ValueError(f"{path}: entry {n} has no 'prompt_id'; expected a list of {{'prompt_id': ..., "
                                     "'<model>': {'score': ...}}} objects")
                for model, ans in prompt.items():
                    if not isinstance(ans, dict):
                        continue
                    score = _pariksha_score(ans.get("score"), metric)
                    rows.append((item_id(prompt["prompt_id"], model), metric, PARIKSHA_JUDGE_NAME, "judge", score,
                                 score, None, "gpt-4", "pariksha-round1", "submitted", path.name, n))
    report.add("human rating rows whose file is named for another language than their item",
               sum(n for n, _ in mislabelled), "kept; the item's language (from the responses files) is used",
               [text for _, text in mislabelled])
    cols = ["item_id", "metric", "rater", "rater_kind", "score", "raw_score", "probs", "model", "prompt_version", "status", *WHERE]
    return pd.DataFrame(rows, columns=cols), items, report


def _pariksha_score(raw, metric: str) -> float | str | None:
    """The score as a number; the raw text when it is not one of PARIKSHA's labels (None when absent)."""
    text = str(raw).strip()
    if metric == "hallucination" and text in ("True", "False"):
        return float(text == "True")
    try:
        return float(int(text))
    except ValueError:
        return None if raw is None else raw


# ---------------------------------------------------------------- the checked join


def _examples(df: pd.DataFrame, mask: np.ndarray, cols: list[str]) -> list[str]:
    """'file: row N, column 'c': value' for the first rows under ``mask`` (more columns as context)."""
    out = []
    for row in df.loc[mask, WHERE + cols].head(N_EXAMPLES).itertuples(index=False):
        file, n, first, *rest = row
        context = "".join(f", {c}={v!r}" for c, v in zip(cols[1:], rest))
        value = "(empty)" if pd.isna(first) else repr(first)
        out.append(f"{file}: row {n}, column {cols[0]!r}: {value}{context}")
    return out


def _absent(values: pd.Series) -> np.ndarray:
    """Missing values; blank text counts as missing."""
    absent = values.isna().to_numpy(copy=True)
    if not pd.api.types.is_numeric_dtype(values):
        absent |= values.astype(str).str.strip().eq("").to_numpy()
    return absent


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(as float, missing, present but not a number)."""
    num = pd.to_numeric(values, errors="coerce").to_numpy(float)
    missing = _absent(values)
    return num, missing, np.isnan(num) & ~missing


def prepare(ratings: pd.DataFrame, rubric_set: RubricSet, items: pd.DataFrame | None = None,
            report: ImportReport | None = None) -> tuple[pd.DataFrame, ImportReport]:
    """Check and join ratings onto items; returns the usable ratings and what was found.

    Excluded as invalid (``Issue.invalid``; their share is :attr:`ImportReport.invalid_share`): no
    item id or rater, unknown rater kinds, metrics not in the rubric set (aliases are mapped to
    their metric first), no score, scores (or raw scores) that are not numbers or are outside the
    metric's human scale, and (without an items table) a ``length_bin`` that is not a whole number
    >= 1. Also reported: human drafts/discards and judge calls that gave no score (excluded), ratings
    that match no item, the same rater rating an item twice (the first row is kept), ratings without
    language or task (kept as 'unknown'), items without human or judge ratings, and input columns
    the report does not use. Examples name file, 1-based row, column and value.
    """
    report = report or ImportReport(source="ratings table")
    missing = [c for c in REQUIRED if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings: missing required column(s) {missing}; the long format needs {REQUIRED}")
    if "_row" not in ratings.columns:
        ratings = _located(ratings, report.source)
    report.ignored_columns += [c for c in ratings.columns if c not in LONG_COLUMNS + WHERE and c not in report.ignored_columns]
    df = ratings.reindex(columns=LONG_COLUMNS + WHERE).reset_index(drop=True)  # absent optional columns become null
    status = df["status"]  # an all-null column (no statuses given) is float: made one of "submitted" at once
    df["status"] = pd.Series("submitted", df.index, object) if status.isna().all() else status.astype(object).fillna("submitted")
    report.counts["ratings read"] = len(df)
    keep = np.ones(len(df), bool)

    def drop(mask, kind: str, cols: list[str], action: str = "excluded", invalid: bool = False) -> None:
        nonlocal keep
        mask = np.asarray(mask, bool) & keep  # each rating is counted under its first problem only
        report.add(kind, int(mask.sum()), action, _examples(df, mask, cols), invalid)
        keep &= ~mask

    def invalid(mask, kind: str, cols: list[str]) -> None:
        drop(mask, kind, cols, invalid=True)

    for col in ("item_id", "rater"):
        invalid(_absent(df[col]), f"ratings with no {col}", [col, "metric"])
        df[col] = df[col].astype(str)
    invalid(~df["rater_kind"].isin(["human", "judge"]).to_numpy(), "ratings with rater_kind not 'human' or 'judge'", ["rater_kind", "rater"])
    aliased = df["metric"].isin(list(rubric_set.aliases)).to_numpy()
    if aliased.any():
        report.counts["ratings whose metric is given by an alias"] = int(aliased.sum())
        df["metric"] = df["metric"].mask(aliased, df["metric"].map(rubric_set.aliases))
    specs = rubric_set.metrics
    metric, metrics = pd.factorize(df["metric"])  # looked up once per distinct metric
    metric_code = np.where(metric < 0, -1, pd.Index(list(specs)).get_indexer(metrics)[metric])  # -1: not in the rubric set
    invalid(metric_code < 0, f"ratings of metrics not in rubric set {rubric_set.name!r}", ["metric", "rater"])
    human = (df["rater_kind"] == "human").to_numpy()
    submitted = (df["status"] == "submitted").to_numpy()
    drop(human & ~submitted, "human ratings not submitted (drafts/discarded)", ["status", "item_id", "rater"])
    drop(~human & ~submitted, "judge ratings not submitted (failed or unparseable calls)", ["status", "item_id", "metric"])
    score, absent, unparseable = _numbers(df["score"])
    invalid(absent, "ratings with no score", ["score", "item_id", "metric"])
    invalid(unparseable, "scores that are not numbers", ["score", "item_id", "metric"])
    raw_score, _, raw_unparseable = _numbers(df["raw_score"])
    invalid(raw_unparseable, "raw scores that are not numbers", ["raw_score", "item_id", "metric"])
    scale_ok = np.zeros(len(df), bool)
    for code, spec in enumerate(specs.values()):
        sel = metric_code == code
        scale_ok[sel] = np.isin(score[sel], np.asarray(spec.human.values, float))
    invalid(~scale_ok, "scores outside the metric's human scale", ["score", "item_id", "metric"])
    if items is None:
        length_bin, absent, _ = _numbers(df["length_bin"])
        whole = ~absent & (length_bin >= 1) & (np.mod(length_bin, 1) == 0)
        invalid(~absent & ~whole, "length_bin not a whole number >= 1", ["length_bin", "item_id"])
    else:
        items = items.copy()
        items["item_id"] = items["item_id"].astype(str)
        dup_items = items["item_id"].duplicated()
        report.add("items listed twice", int(dup_items.sum()), "first kept", items.loc[dup_items, "item_id"].tolist())
        items = items[~dup_items]
        for col in ("language", "task"):
            absent = _absent(items[col])
            report.add(f"items with no {col}", int(absent.sum()), "kept, as 'unknown'", items.loc[absent, "item_id"].tolist())
            items[col] = items[col].astype(object).mask(absent, "unknown").astype(str)
        report.counts["items"] = len(items)
        known = df["item_id"].isin(items["item_id"]).to_numpy()
        drop(~known & human, "human ratings that match no item", ["item_id", "metric", "rater"])
        drop(~known & ~human, "judge ratings that match no item", ["item_id", "metric", "rater"])
    dup = np.zeros(len(df), bool)
    dup[keep] = df.loc[keep, ["item_id", "metric", "rater"]].duplicated(keep="first").to_numpy()
    drop(dup, "raters who rated the same item twice (extra rows)", ["rater", "item_id", "metric", "score"], "first rating kept")
    for col in ("language", "task"):
        absent = _absent(df[col])
        df[col] = df[col].astype(str).mask(absent, "unknown") if absent.any() else df[col].astype(str)
        if items is None:
            report.add(f"ratings with no {col}", int((absent & keep).sum()), "kept, as 'unknown'", _examples(df.assign(**{col: None}), absent & keep, [col, "item_id"]))
    df = df.assign(score=score, raw_score=raw_score).drop(columns=WHERE)
    if not keep.all():  # (a take of every column otherwise)
        df = df[keep]
    if items is None:
        df["length_bin"] = length_bin[keep]
    else:
        df = df.drop(columns=[c for c in items.columns if c != "item_id" and c in df.columns]).merge(items, on="item_id", how="left")
        for kind in ("human", "judge"):
            rated = df.loc[df["rater_kind"] == kind, "item_id"].unique()
            without = items[~items["item_id"].isin(rated)]
            report.add(f"items without {kind} ratings", len(without), "reported", without["item_id"].tolist())
    df["length_bin"] = df["length_bin"].astype("Int64")
    present = set(df["metric"].unique())
    unrated = [m for m in specs if m not in present]
    report.add(f"metrics of rubric set {rubric_set.name!r} with no usable ratings", len(unrated), "left out of the report", unrated)
    report.counts["ratings used"] = len(df)
    report.counts["human ratings used"] = int((df["rater_kind"] == "human").sum())
    report.counts["judge ratings used"] = int((df["rater_kind"] == "judge").sum())
    report.counts["items rated"] = int(df["item_id"].nunique())
    return df.reset_index(drop=True), report
