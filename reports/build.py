"""Build the calibration report (HTML, JSON, CSV) from a long ratings table."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import studytables
from rubrics import RubricSet
from studytables import REPORT_CELLS

from .analysis import analyse, records, verdicts
from .calibration import calibrate
from .config import ReportConfig
from .ratings import ImportReport, from_pariksha, from_study, prepare

REPORT_DIR = Path(studytables.REPORT_CELLS.file).parent  # the study's report directory: report/

log = logging.getLogger(__name__)
# PARIKSHA's judge and its GPT source models (the part of an item id after "|"): the judge's own family
PARIKSHA_FAMILIES = {"gpt-4 (PARIKSHA)": "gpt", "GPT4o": "gpt", "gpt-4": "gpt", "gpt-35-turbo": "gpt"}


@contextmanager
def _phase(name: str):
    """Log the phase's wall time at DEBUG level (``benchmarks/bench_report.py`` reads it); decisions and
    system run beside calibration to verdicts, so those phases' times overlap."""
    start = time.perf_counter()
    yield
    log.debug("phase %s: %.3f s", name, time.perf_counter() - start)


def build_report(ratings: pd.DataFrame, rubric_set: RubricSet, out_dir: str | Path, items: pd.DataFrame | None = None,
                 import_report: ImportReport | None = None, config: ReportConfig | None = None,
                 title: str = "kasauti calibration report", comparisons: pd.DataFrame | None = None) -> dict[str, Path]:
    """Check and join the ratings, compute every statistic, calibrate, and write
    ``report.html``, ``report.json`` and ``report.csv`` into ``out_dir``; returns their paths.

    With ``comparisons`` (the long pairwise format) the report gets a Pairwise section
    (``pairwise_<name>.csv``); with judge ratings a Decisions section (``decisions_<name>.csv``); with
    three or more source models a System-level agreement section (``system_agreement.csv``);
    when two or more judges scored the same items, their panel is added as one more judge."""
    cfg = config or ReportConfig()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory; give a directory for the report (it is created if missing)")
    with _phase("join"):
        clean, imp = prepare(ratings, rubric_set, items, import_report)
    imp.check_invalid_share(cfg.max_excluded_share)
    if not imp.counts["ratings read"]:
        raise ValueError(f"{imp.source}: no ratings (the table has no rows)")
    if clean.empty:
        why = "; ".join(f"{i.kind}: {i.count}, e.g. {i.examples[0] if i.examples else '-'}" for i in imp.issues)
        raise ValueError(f"no usable ratings: {imp.counts['ratings read']} of {imp.counts['ratings read']} excluded ({why}); "
                         "check the input against the rubric set")
    from .panel import panel_rows  # scipy: only when a report is built
    from .sections import bias_notes, decisions_section, judges_sharing_items, pairwise_section, system_section

    specs = rubric_set.metrics
    panel = None
    with _phase("panel"):
        members = judges_sharing_items(clean)
        if len(members) >= 2:
            panel_ratings, panel = panel_rows(clean, members, specs)
            clean = pd.concat([clean, panel_ratings], ignore_index=True)

    def beside() -> tuple:
        """The decision and system-level statistics: they need neither the calibration nor the cells, so they
        run in a thread beside them (a core the calibration and, at times, the statistics' threads leave idle)."""
        mine = clean.copy(deep=False)  # an object of its own (copy-on-write: no data copied)
        with _phase("decisions"):
            dec = decisions_section(mine, specs, cfg, panel)
        with _phase("system"):
            return dec, system_section(mine, cfg)

    with ThreadPoolExecutor(1) as pool:
        side = pool.submit(beside)
        with _phase("calibration"):
            cal, cal_info = calibrate(clean, specs, cfg.calibration_min_items, cfg.calibration_min_items_language,
                                      cfg.calibration_folds, cfg.seed)
        with _phase("calibrated rows"):
            rated = pd.concat([clean, cal], ignore_index=True)
        with _phase("statistics"):
            rows, extras = analyse(rated, specs, cfg.n_boot, cfg.seed, cfg.min_items, cfg.consensus_min_humans)
        with _phase("cells"):
            cells = pd.DataFrame(rows)
        with _phase("verdicts"):
            verdict_rows = verdicts(cells, extras, cfg)
        (dec_frames, decisions), (sys_frames, system) = side.result()
    notes = bias_notes(decisions)
    for v in verdict_rows:
        v["note"] = "; ".join([v["note"], *notes.get((v["metric"], v["judge"]), [])]).strip("; ")
    with _phase("pairwise"):
        pw_frames, pairwise = pairwise_section(comparisons, cfg) if comparisons is not None and len(comparisons) else \
            ({}, {"note": "no pairwise comparisons (comparisons.parquet, judge_comparisons.parquet or PARIKSHA's pairwise/)"})
    out.mkdir(parents=True, exist_ok=True)
    present = set(clean["metric"].unique())
    meta = {"title": title, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rubric_set": f"{rubric_set.name} v{rubric_set.version}", "config": cfg.model_dump(),
            "metrics": {m: {"measurement": s.measurement, "levels": s.human.values,
                            "labels": [lv.label for lv in s.human.levels], "title": s.title}
                        for m, s in specs.items() if m in present}}
    with _phase("html"):
        from .html import render_html  # plotly: only when a page is written

        html, n_charts = render_html(meta, imp, cells, extras, verdict_rows, cal_info, cfg, pairwise, pw_frames, decisions,
                                     system)
    meta["n_charts"] = n_charts
    paths = {"html": out / "report.html", "json": out / "report.json", "csv": out / "report.csv"}
    with _phase("write"):
        paths["html"].write_text(html, encoding="utf-8")
        studytables.write(REPORT_CELLS, cells, paths["csv"])
        for prefix, frames in (("pairwise", pw_frames), ("decisions", dec_frames), ("system", sys_frames)):
            for name, frame in frames.items():
                if len(frame):
                    paths[f"{prefix}_{name}"] = out / f"{prefix}_{name}.csv"
                    frame.to_csv(paths[f"{prefix}_{name}"], index=False)
        doc = {"meta": meta, "import": imp.to_dict(), "verdicts": verdict_rows, "calibration": cal_info,
               "cells": records(cells), "tables": extras,
               "pairwise": pairwise, "decisions": decisions, "system": system}
        paths["json"].write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")  # compact: C encoder
    return paths


def report_study(root: str | Path, rubric_set: RubricSet, config: ReportConfig | None = None,
                 out_dir: str | Path | None = None) -> tuple[dict[str, Path], ImportReport]:
    """`kasauti report`: the report of a study directory from its ``sample.parquet``, ``ratings.parquet``
    and ``judgments.parquet`` (either may be missing, not both), into `out_dir` (default ``<root>/report``);
    ``slices.parquet`` and ``ratings_escalated.parquet`` say which labels PPI may use (:func:`from_study`).
    A study with pairwise comparisons but no direct ratings or judgments (original vs boosted) gets the
    pairwise statistics alone: ``pairwise.json`` and ``pairwise_<name>.csv`` (`reports.pairwise.report`)."""
    root = Path(root)
    sample = root / studytables.SAMPLE.file
    if not sample.exists():
        raise FileNotFoundError(f"{sample}: not found; run `kasauti sample {root}` first")
    imp = ImportReport(source=str(root))
    from .pairwise.leaderboard import check

    parts = []
    for t in (studytables.COMPARISONS, studytables.JUDGE_COMPARISONS):
        if (root / t.file).exists():
            parts.append(studytables.read(t, root / t.file))
            check(parts[-1][parts[-1]["status"] == "submitted"], str(root / t.file))  # names the file's row; others are counted
    comparisons = pd.concat(parts, ignore_index=True) if parts else None
    out = root / REPORT_DIR if out_dir is None else Path(out_dir)
    if comparisons is not None and not any(studytables.read_arrow(t, root / t.file, ["item_id"]).num_rows
                                           for t in (studytables.RATINGS, studytables.JUDGMENTS) if (root / t.file).exists()):
        from .pairwise.report import write_pairwise  # a pairwise-only study (e.g. original vs boosted): no direct ratings
        from .sections import pairwise_section

        return write_pairwise(*pairwise_section(comparisons, config or ReportConfig()), out), imp
    ratings, items = from_study(sample, root / studytables.RATINGS.file, root / studytables.JUDGMENTS.file,
                                root / studytables.SLICES.file, root / studytables.RATINGS_ESCALATED_FILE)
    return build_report(ratings, rubric_set, out, items, imp, config, comparisons=comparisons), imp


def pariksha_comparisons(root: str | Path) -> pd.DataFrame | None:
    """PARIKSHA's pairwise comparisons from ``<root>/pairwise/`` (humans and GPT-4), or None without that folder."""
    if not (Path(root) / "pairwise").is_dir():
        return None
    from .pairwise.pariksha import from_pariksha_pairwise

    return from_pariksha_pairwise(root)[0]


def report_pariksha(root: str | Path, out_dir: str | Path, rubric_set: RubricSet, config: ReportConfig | None = None) -> tuple[dict[str, Path], ImportReport]:
    """The report straight from the PARIKSHA round-1 files (used by ``kasauti demo``)."""
    ratings, items, imp = from_pariksha(root)
    paths = build_report(ratings, rubric_set, out_dir, items, imp, config or ReportConfig(model_families=PARIKSHA_FAMILIES),
                         title=f"kasauti calibration report: {Path(root).name}", comparisons=pariksha_comparisons(root))
    return paths, imp
