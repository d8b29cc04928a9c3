"""Stratified, length-binned, proportional sampling.

Within each stratum (language x task by default) responses are cut into k length bins at the
stratum's quantiles of grapheme length (k = 5: quintiles; bins are right-closed like
``pandas.qcut``, so equal lengths share a bin). The stratum's sample size n is split over bins by
largest-remainder (Hamilton) allocation of ``n * N_b / N``, so every bin gets its exact
proportional share rounded up or down, and each bin draws uniformly without replacement.
Strata with N <= n are taken whole. The draw order is a seeded 64-bit hash of each item id, so
each bin takes its rows with the smallest hashes: the same seed gives the same sample whatever
the row order of the file, and adding rows or strata leaves the other strata's draws unchanged.
The scan keeps each stratum's likely winners with all their columns (`Retainer`), so a second
pass over the data is needed only in the rare case a drawn row was not kept.

Quality filters are applied lazily: candidates of a bin are examined in their random order and
the first ones that pass are kept, which is a uniform sample of the passing rows of that bin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

import studytables

from .config import DataSource, SamplingConfig
from .filters import language_matches, repetition_ratio
from .intake import Population, Tally, mapped_columns, scan, split_conversation
from .sources import SourceError, iter_chunks

SAMPLE_COLUMNS = studytables.SAMPLE.names
INTAKE_FILE = "intake.json"  # the intake summary, beside the sample in the study directory


def length_bins(lengths: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin number 1..k of each length and the k-1 inner edges (quantiles, right-closed bins)."""
    edges = np.quantile(lengths, np.arange(1, k) / k) if len(lengths) else np.zeros(k - 1)
    return np.searchsorted(edges, lengths, side="left").astype(np.int8) + 1, edges


def allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder allocation of n over groups of size `counts`, never above a group's size."""
    counts = np.asarray(counts, dtype=np.int64)
    total = counts.sum()
    if n >= total:
        return counts.copy()
    exact = n * counts / total
    alloc = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(counts)), -(exact - alloc)))  # biggest remainder first, ties by bin
    alloc[order[: n - alloc.sum()]] += 1
    return alloc


class Retainer:
    """Holds, per stratum, the rows with the `k` smallest keys seen so far, with all their columns.

    The draw takes, per length bin, the rows with the smallest keys, and those are almost always
    among the stratum's smallest 2n + 50; rows it still lacks are fetched in a second pass.
    """

    def __init__(self, k: int):
        self.k = k
        self.best: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # stratum -> (keys, source rows)
        self.tables: list[pa.Table] = []
        self.stored = 0

    def __call__(self, rows: np.ndarray, stratum: np.ndarray, keys: np.ndarray, table: pa.Table) -> None:
        new_rows = []
        for s in np.unique(stratum):
            m = stratum == s
            k_old, r_old = self.best.get(int(s), (keys[:0], rows[:0]))
            k_all, r_all = np.concatenate([k_old, keys[m]]), np.concatenate([r_old, rows[m]])
            if len(k_all) > self.k:
                top = np.argpartition(k_all, self.k - 1)[: self.k]
                k_all, r_all = k_all[top], r_all[top]
            self.best[int(s)] = (k_all, r_all)
            new_rows.append(r_all)
        kept = np.isin(rows, np.concatenate(new_rows))
        self.tables.append(table.filter(pa.array(kept)).append_column("source_row", pa.array(rows[kept])))
        self.stored += int(kept.sum())
        if self.stored > 4 * self.k * max(1, len(self.best)):
            self.tables = [self.rows(self.held())]
            self.stored = self.tables[0].num_rows

    def held(self) -> np.ndarray:
        return np.concatenate([r for _, r in self.best.values()]) if self.best else np.zeros(0, np.int64)

    def rows(self, wanted: np.ndarray) -> pa.Table | None:
        """The held rows among `wanted` source rows (None if nothing was ever held)."""
        if not self.tables:
            return None
        table = pa.concat_tables(self.tables)
        return table.filter(pc.is_in(table.column("source_row"), pa.array(wanted)))


@dataclass
class Plan:
    """For every stratum: each row's bin, the quota per bin and the candidates in draw order."""

    bins: np.ndarray  # per population row, 1..k
    quota: dict[tuple[int, int], int]  # (stratum, bin) -> items to draw
    candidates: dict[tuple[int, int], np.ndarray]  # (stratum, bin) -> population positions, draw order
    members: list[np.ndarray]  # population positions of each stratum
    whole: set[int]


def plan(pop: Population, cfg: SamplingConfig) -> Plan:
    """Bins, quotas and draw order (ascending seeded id hash) per stratum and bin."""
    bins = np.zeros(len(pop.rows), np.int8)
    quota, candidates, members, whole = {}, {}, [], set()
    order = np.lexsort((pop.key, pop.stratum))  # by stratum, then by key: the draw order
    bounds = np.searchsorted(pop.stratum[order], np.arange(len(pop.strata) + 1))
    for s in range(len(pop.strata)):
        pos = order[bounds[s] : bounds[s + 1]]
        members.append(pos)
        b, _ = length_bins(pop.length[pos], cfg.length_bins)
        bins[pos] = b
        alloc = allocate(np.bincount(b, minlength=cfg.length_bins + 1)[1:], cfg.per_stratum)
        if cfg.per_stratum >= len(pos):
            whole.add(s)
        for k in range(1, cfg.length_bins + 1):
            quota[(s, k)] = int(alloc[k - 1])
            candidates[(s, k)] = pos[b == k]
    return Plan(bins, quota, candidates, members, whole)


def _normalise_rows(table: pa.Table, source: DataSource, pop: Population) -> pd.DataFrame:
    """Source columns -> the sample's fields, indexed by source row."""
    mapping = {f: c for f, c in source.columns.model_dump().items() if c}
    df = pd.DataFrame({f: table.column(c).to_pylist() for f, c in mapping.items()})
    df["source_row"] = table.column("source_row").to_numpy()
    if "conversation" in mapping:
        split = df["conversation"].map(split_conversation)
        df["prompt"] = split.map(lambda p: p[0])
        df["response"] = split.map(lambda p: p[1])
        df["conversation"] = split.map(lambda p: json.dumps(p[2], ensure_ascii=False) if len(p[2]) > 1 else None)
    df["language"] = df["language"].map(pop.languages)
    df = df.rename(columns={"id": "item_id"})
    for c in ["conversation", "system_prompt", "source_model", "context", "prompt"]:
        if c not in df:
            df[c] = None
    return df.set_index("source_row", drop=False)


def _fetch(source: DataSource, pop: Population, wanted: np.ndarray) -> pa.Table:
    """Rows the retainer does not hold: one more pass over the source."""
    want = pa.array(np.sort(wanted))
    parts = []
    for chunk in iter_chunks(pop.path, pop.fmt, mapped_columns(source), source.split):
        hit = pc.is_in(chunk.rows, want)
        if pc.any(hit).as_py():
            parts.append(pa.Table.from_batches([chunk.batch]).filter(hit).append_column("source_row", pc.filter(chunk.rows, hit)))
    return pa.concat_tables(parts)


def _passes(row: pd.Series, cfg: SamplingConfig) -> tuple[str | None, str]:
    """(None, "") if the row passes; else the first failing filter (cheapest first) and why."""
    lid, rep = cfg.filters.language_id, cfg.filters.repetition
    if rep.enabled:
        ratio = repetition_ratio(row["response"])
        if ratio > rep.max_ratio:
            return "repetition", f"word repetition ratio {ratio:.2f} > {rep.max_ratio}"
    if lid.enabled:
        ok, why = language_matches(row["response"], row["language"], lid.min_confidence)
        if not ok:
            return "language_id", why
    return None, ""


@dataclass
class SampleResult:
    sample: pd.DataFrame  # SAMPLE_COLUMNS
    strata: pd.DataFrame  # population vs sample per stratum x bin
    tests: pd.DataFrame  # per stratum: KS two-sample test of lengths, population vs sample
    intake: dict


def draw(source: DataSource, path: Path, cfg: SamplingConfig, progress=None) -> SampleResult:
    """Scan the source, plan the draw, take the drawn rows (applying filters) and summarise."""
    filtering = cfg.filters.language_id.enabled or cfg.filters.repetition.enabled
    retainer = Retainer((2 * cfg.per_stratum + 50) * (3 if filtering else 1))
    pop = scan(source, path, cfg, progress, retain=retainer)
    p = plan(pop, cfg)
    rejected = Tally()
    examined, passes = 0, 0
    chosen: list[pd.DataFrame] = []
    cursor = {cell: 0 for cell in p.quota}  # how far down each cell's candidates we have looked
    need = dict(p.quota)
    column = source.columns.response or source.columns.conversation
    while any(need[c] > 0 and cursor[c] < len(p.candidates[c]) for c in need):
        take = {c: p.candidates[c][cursor[c] : cursor[c] + (2 * q + 10 if filtering else q)] for c, q in need.items() if q > 0}
        wanted = pop.rows[np.concatenate(list(take.values()))]  # source rows, in cell order
        held = retainer.rows(wanted)
        missing = np.setdiff1d(wanted, held.column("source_row").to_numpy() if held is not None else [])
        if missing.size:
            passes += 1
            held = _fetch(source, pop, missing) if held is None else pa.concat_tables([held, _fetch(source, pop, missing)])
        positions = np.concatenate(list(take.values()))
        rows = _normalise_rows(held, source, pop).loc[pop.rows[positions]]
        rows.index = positions
        start = 0
        for c, pos in take.items():
            cursor[c] += len(pos)
            got = rows.iloc[start : start + len(pos)]
            start += len(pos)
            if filtering:
                verdicts = [_passes(r, cfg) for _, r in got.iterrows()]
                examined += len(verdicts)
                for (reason, why), row in zip(verdicts, got["source_row"]):
                    if reason:
                        rejected.add(reason, 1, [f"{pop.locate(row)}, column {column!r}: {why}"])
                got = got[[v[0] is None for v in verdicts]]
            got = got.iloc[: need[c]]
            need[c] -= len(got)
            chosen.append(got)
    sample = pd.concat(chosen) if chosen else pd.DataFrame(columns=SAMPLE_COLUMNS)
    sample["length"] = pop.length[sample.index]
    sample["stratum"] = [pop.strata[s] for s in pop.stratum[sample.index]]
    sample["length_bin"] = p.bins[sample.index]
    sample = sample.sort_values(["stratum", "source_row"])[SAMPLE_COLUMNS].reset_index(drop=True)
    intake = {**pop.summary(), "extra_passes": passes}
    if filtering:
        intake["filters"] = {
            "examined": examined,
            "rejected": {k: {"count": v, "examples": rejected.examples[k]} for k, v in rejected.counts.items()},
        }
    strata, tests = _summaries(pop, p, sample, cfg)
    return SampleResult(sample, strata, tests, intake)


def _summaries(pop: Population, p: Plan, sample: pd.DataFrame, cfg: SamplingConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    k = cfg.length_bins
    got = sample.groupby(["stratum", "length_bin"]).size()
    by_stratum = dict(list(sample.groupby("stratum")["length"]))
    rows, tests = [], []
    for s, name in enumerate(pop.strata):
        pos = p.members[s]
        lengths, bins = pop.length[pos], p.bins[pos]
        n_target = min(cfg.per_stratum, len(pos))
        counts = np.bincount(bins, minlength=k + 1)[1:]
        lo = np.full(k + 1, np.iinfo(np.int64).max)
        hi = np.full(k + 1, -1)
        np.minimum.at(lo, bins, lengths)
        np.maximum.at(hi, bins, lengths)
        for b in range(1, k + 1):
            rows.append({
                **pop.stratum_fields[name], "stratum": name, "length_bin": b,
                "length_min": int(lo[b]) if counts[b - 1] else None, "length_max": int(hi[b]) if counts[b - 1] else None,
                "population": int(counts[b - 1]), "expected": n_target * counts[b - 1] / len(pos),
                "quota": p.quota[(s, b)], "sampled": int(got.get((name, b), 0)), "taken_whole": s in p.whole,
            })
        sl = by_stratum.get(name, pd.Series(dtype=np.int64)).to_numpy()
        ks = stats.ks_2samp(lengths, sl) if len(sl) else None
        tests.append({
            "stratum": name, "population": len(pos), "sampled": len(sl),
            "ks_statistic": float(ks.statistic) if ks else np.nan, "ks_pvalue": float(ks.pvalue) if ks else np.nan,
            "median_length_population": float(np.median(lengths)), "median_length_sample": float(np.median(sl)) if len(sl) else np.nan,
        })
    return pd.DataFrame(rows), pd.DataFrame(tests)


def save(result: SampleResult, sample_path: Path, strata_path: Path, intake_path: Path) -> None:
    """Write the intake summary (JSON, with the tests), then the sample and strata tables (Parquet).

    Raises SourceError, after writing the intake summary, when nothing was sampled.
    """
    summary = {**result.intake, "length_tests": result.tests.replace({np.nan: None}).to_dict("records")}
    intake_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    if result.sample.empty:
        raise SourceError(f"{result.intake['source']}: {_why_empty(result.intake)}; nothing sampled, see {intake_path}")
    studytables.write(studytables.SAMPLE, result.sample, sample_path)
    studytables.write(studytables.STRATA, result.strata, strata_path)


def sample_study(root: str | Path, source: DataSource, data_path: str | Path, cfg: SamplingConfig,
                 progress=None) -> SampleResult:
    """`kasauti sample`: draw from `data_path` and write ``intake.json``, ``sample.parquet`` and
    ``strata.parquet`` into the study directory `root` (see `save`); `progress(rows read)` while scanning."""
    root = Path(root)
    result = draw(source, Path(data_path), cfg, progress=progress)
    save(result, root / studytables.SAMPLE.file, root / studytables.STRATA.file, root / INTAKE_FILE)
    return result


def _why_empty(intake: dict) -> str:
    if not intake["rows_read"]:
        return "no rows to read"
    if not intake["rows_kept"]:
        reasons = sorted(intake["excluded"].items(), key=lambda kv: -kv[1]["count"])
        top = ", ".join(f"{info['count']} x {reason}" for reason, info in reasons)
        return f"read {intake['rows_read']} rows and kept none ({top}; e.g. {reasons[0][1]['examples'][0]})"
    return f"the filters rejected every one of the {intake['rows_kept']} rows kept"
