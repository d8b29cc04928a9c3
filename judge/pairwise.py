"""The pairwise judge: which of two responses to the same prompt is better, on one criterion, with
an explicit tie (MT-Bench's and PARIKSHA's style), each pair asked in both orders.

It is the direct judge's run (``runner.JudgeRun``: the ledger, backends, retries, re-asks,
strict parsing, the summary) with other prompts and answers: a call is pair x shown order x
criterion x repeat, its ledger ``item_id`` is ``<pair_id>:<shown_order>`` (so the ledger key
includes the order) and its ``mode`` is ``pairwise``. The answer is
``{"reason": ..., "verdict": "A" | "B" | "tie"}``, nothing else accepted (``"a"``, ``"Tie"``,
``"A."`` are re-asked). Verdict probabilities: at the token that carries the verdict (the one
holding the first character after ``"verdict": "``) the ``top_logprobs`` alternatives led by the
same characters as the chosen token are read as verdicts (``A``, ``B``, or a start of ``tie``),
summed per verdict and renormalised. The outcome and probabilities are then put in terms of the
models (``a`` = ``model_a`` better) through the shown order; ``judge_comparisons.parquet`` holds
one row per call, and :func:`position_stats` gives position consistency and the first-position
win rate per judge and criterion (``reports.pairwise.pairs``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

import rubrics
import studytables
from rubrics import VERDICTS, Criterion, RubricSet
from sampling.pairs import pair_items, read_boosted
from studytables import JUDGE_COMPARISONS, PAIRS, SAMPLE

from .backends import Completion
from .config import JudgeConfig
from .ledger import PAIRWISE, Ledger
from .parse import AnswerError, Token, load_object
from .prompts import ITEM_FIELDS, Call, Planner, _item_for_render, _missing, check_ids, sha
from .runner import LEDGER_FILE, DryRun, JudgeRun, Progress, Summary, execute, limit_items, plan_only, read_sample

ORDERS = ("ab", "ba")  # ab: item_a shown as Response A
PAIR_COLUMNS = ("pair_id", "prompt_id", "language", "task", "item_a", "item_b", "model_a", "model_b")
_OUTCOME = {"ab": {"A": "a", "B": "b", "tie": "tie"}, "ba": {"A": "b", "B": "a", "tie": "tie"}}


def parse_verdict(text: str) -> tuple[str, str | None]:
    """(verdict, reason) of a pairwise answer; AnswerError naming what is wrong."""
    obj = load_object(text)
    reason = obj.get("reason") if isinstance(obj.get("reason"), str) else None
    if "verdict" not in obj:
        raise AnswerError("the answer has no verdict")
    if obj["verdict"] not in VERDICTS or not isinstance(obj["verdict"], str):
        raise AnswerError(f"the verdict must be exactly one of {list(VERDICTS)}, got {json.dumps(obj['verdict'])}")
    return obj["verdict"], reason


_VERDICT_KEY = re.compile(r'(?<!\\)"verdict"\s*:\s*"')


def _verdict_of(text: str) -> str | None:
    """The verdict a token's text (after the chosen token's lead) starts: ``A``, ``B``, or a start of ``tie``."""
    v = text.split('"', 1)[0]
    return v if v in ("A", "B") else "tie" if v and "tie".startswith(v) else None


def verdict_probs(tokens: Sequence[Token], verdict: str) -> dict[str, float] | None:
    """Verdict -> probability from the verdict token's alternatives; None when it cannot be found."""
    text = "".join(t.text for t in tokens)
    key = _VERDICT_KEY.search(text)
    if key is None or not text.startswith(verdict, key.end()):
        return None
    pos, offset = key.end(), 0
    for tok in tokens:
        start, offset = offset, offset + len(tok.text)
        if start <= pos < offset:
            lead = tok.text[:pos - start]
            alts = dict(tok.top)
            alts.setdefault(tok.text, tok.logprob)
            mass = dict.fromkeys(VERDICTS, 0.0)
            for alt, lp in alts.items():
                v = _verdict_of(alt[len(lead):]) if alt.startswith(lead) else None
                if v is not None and lp is not None and math.isfinite(lp):
                    mass[v] += math.exp(lp)
            total = sum(mass.values())
            return {v: p / total for v, p in mass.items()} if total > 0 else None
    return None


class PairPlanner(Planner):
    """The calls of a pairwise judge, in order: pair, shown order, criterion, repeat. ``row``
    indexes one record per pair x order (texts shown first and second, the pair's fields).

    `pairs` is pairs.parquet-shaped; the texts are those `sampling.pairs.pair_items` resolves from
    `sample` (and, for two versions of one item, from `boosted`, boosted.parquet). Pairs repeated for annotators
    (``repeat_of``) are not asked again (``self.repeats_skipped``): every pair is asked in both orders anyway."""

    TEMPLATES = "pair_*.j2"

    def __init__(self, pairs: pd.DataFrame, sample: pd.DataFrame, rubric: RubricSet, judge: JudgeConfig, overall: bool = False,
                 boosted: pd.DataFrame | None = None):
        check_ids(pairs, PAIR_COLUMNS, "pair_id", "pairs.parquet", "`sampling.pairs.write_pairs`")
        check_ids(sample, ("item_id", "prompt", "response"), "item_id", "sample.parquet", "`kasauti sample`")
        repeat = pairs["repeat_of"].notna().to_numpy() if "repeat_of" in pairs.columns else [False] * len(pairs)
        self.repeats_skipped = int(sum(repeat))
        self.records = []
        for i, (p, rep, (a, b)) in enumerate(zip(pairs.to_dict("records"), repeat, pair_items(pairs, sample, boosted))):
            if rep:
                continue
            texts = (a["response"], b["response"])
            pair = {**{k: a.get(k) for k in ITEM_FIELDS if k != "response"}, **{k: p[k] for k in PAIR_COLUMNS},
                    "length_a": a.get("length"), "length_b": b.get("length")}
            for order in ORDERS:
                shown = texts if order == "ab" else texts[::-1]
                self.records.append({**pair, "item_id": f"{p['pair_id']}:{order}", "shown_order": order,
                                     "first": shown[0], "second": shown[1], "pairs_row": i + 1})
        self.rubric, self.judge, self.overall = rubric, judge, overall
        self.params_json = judge.params_json()
        self._groups: dict[str, list[tuple[Criterion, ...]]] = {}
        self._group_hash: dict[tuple[str, ...], str] = {}

    def groups(self, task: str) -> list[tuple[Criterion, ...]]:
        if task not in self._groups:
            criteria = rubrics.pair_criteria(self.rubric.family_for(task).metrics, self.overall)
            self._groups[task] = [(c,) for c in criteria]
        return self._groups[task]

    def _where(self, row: int) -> str:
        rec = self.records[row]
        return f"pairs.parquet row {rec['pairs_row']} (pair {rec['pair_id']!r})"

    @staticmethod
    def _spec(c: Criterion) -> list:
        return [c.name, c.title, c.question]

    def _content(self, rec: Mapping) -> str:
        return sha(super()._content(rec) + "\x00" + str(rec["first"]) + "\x00" + str(rec["second"]))

    def _render(self, rec: Mapping, criteria: Sequence[Criterion], language: str) -> list[dict[str, str]]:
        return rubrics.pair_messages(criteria[0], _item_for_render(rec), str(rec["first"]), str(rec["second"]), language)


class PairwiseRun(JudgeRun):
    """A pairwise judge over pairs, writing to one ledger. Use :func:`compare`."""

    REASK_FORM = 'with a "reason" and a "verdict" of exactly "A", "B" or "tie"'

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.summary.repeats_skipped = self.planner.repeats_skipped

    def schema(self, call: Call) -> dict:
        return rubrics.pair_response_schema()

    def evaluate(self, call: Call, completion: Completion) -> tuple[tuple[str, str | None] | None, str | None]:
        try:
            return parse_verdict(completion.text), None
        except AnswerError as exc:
            return None, str(exc)

    def results(self, call: Call, status: str, answers, completion: Completion | None, error: str | None) -> dict:
        """The pair's fields, the shown order and the criterion, the verdict and its outcome in model terms."""
        rec = self.planner.records[call.row]
        order = rec["shown_order"]
        out = {k: _plain(rec[k]) for k in (*PAIR_COLUMNS, "length_a", "length_b")}
        out.update(shown_order=order, criterion=call.metrics[0].name, verdict=None, outcome=None, probs=None, reason=None,
                   status="failed" if status == "failed" else "unparseable", error=error)
        if answers is not None:
            verdict, out["reason"] = answers
            if status == "ok":
                probs = verdict_probs(completion.tokens, verdict) if completion.tokens else None
                out.update(verdict=verdict, outcome=_OUTCOME[order][verdict], status="ok",
                           probs=None if probs is None else {_OUTCOME[order][v]: p for v, p in probs.items()})
        return out


def _plain(v):
    """A value for the ledger's JSON: missing values as null, numpy scalars as Python's."""
    return None if _missing(v) else v.item() if hasattr(v, "item") else v


def _run(pairs, sample, rubric, cfg, overall, boosted=None, **kw):
    """The run of a pairwise judge: `cfg` with mode ``pairwise`` (the direct mode does not change its answers,
    so it is neither in the ledger key nor in `params`)."""
    cfg = cfg.model_copy(update={"mode": PAIRWISE})
    return lambda ledger: PairwiseRun(sample, rubric, cfg, ledger, planner=PairPlanner(pairs, sample, rubric, cfg, overall, boosted),
                                      **kw)


def compare(pairs: pd.DataFrame, sample: pd.DataFrame, rubric: RubricSet, cfg: JudgeConfig, ledger_path: str | Path, *,
            overall: bool = False, progress: Progress | None = None, retry_failed: bool = True, backend=None,
            boosted: pd.DataFrame | None = None) -> Summary:
    """Ask `cfg` every pending pairwise call over `pairs` (each pair in both orders, per criterion:
    each of the task family's metrics, or one ``overall``); answers go to the ledger as they come.
    `boosted` (boosted.parquet) holds the second version of pairs of two versions of one item."""
    return execute(_run(pairs, sample, rubric, cfg, overall, boosted, progress=progress, retry_failed=retry_failed),
                   ledger_path, backend)


def dry_compare(pairs: pd.DataFrame, sample: pd.DataFrame, rubric: RubricSet, cfg: JudgeConfig, ledger_path: str | Path, *,
                overall: bool = False, show: int = 2, retry_failed: bool = True, boosted: pd.DataFrame | None = None) -> DryRun:
    """The pairwise calls a run would make (none is made) and the first `show` rendered prompts."""
    return plan_only(_run(pairs, sample, rubric, cfg, overall, boosted, retry_failed=retry_failed), ledger_path, show)


def read_pairs(study_root: str | Path) -> pd.DataFrame:
    """The study's pairs.parquet, checked against its table definition (ValueError naming the problem)."""
    path = Path(study_root) / PAIRS.file
    if not path.exists():
        raise ValueError(f"{path}: not found; make the pairs first (`sampling.pairs.write_pairs`)")
    return studytables.read(PAIRS, path)


def comparisons(ledger_path: str | Path) -> pd.DataFrame:
    """The judge comparisons table (``studytables.JUDGE_COMPARISONS``): one row per pairwise call in the ledger."""
    rows = []
    with Ledger(ledger_path) as ledger:
        for judge, model, ph, repeat, results, raw, attempts in ledger.pairwise_calls():
            r = json.loads(results)
            rows.append({**{k: r[k] for k in ("pair_id", "prompt_id", "language", "model_a", "model_b", "criterion")},
                         "rater": judge, "rater_kind": "judge", "outcome": r["outcome"], "shown_order": r["shown_order"],
                         "probs": None if r["probs"] is None else json.dumps(r["probs"]), "justification": r["reason"],
                         "status": "submitted" if r["status"] == "ok" else "discarded", "length_a": r["length_a"],
                         "length_b": r["length_b"], "task": r["task"], "model": model, "prompt_hash": ph, "repeat": repeat,
                         "verdict": r["verdict"], "judge_status": r["status"], "error": r["error"], "raw_answer": raw,
                         "attempts": attempts})
    return studytables.conform(JUDGE_COMPARISONS, pd.DataFrame(rows, columns=JUDGE_COMPARISONS.names))


def compare_study(root: str | Path, rubric: RubricSet, judges: Sequence[JudgeConfig], *, limit: int | None = None,
                  overall: bool = False, progress: Progress | None = None, retry_failed: bool = True) -> list[Summary]:
    """`kasauti judge --pairs`: each judge compares the study's ``pairs.parquet`` (its first `limit`
    pairs; a pair of an item's original and boosted version shows the one in ``boosted.parquet``) in both orders into ``judge_ledger.sqlite``, then ``judge_comparisons.parquet`` is
    exported from the ledger, also when a judge fails. Returns one summary per judge."""
    root = Path(root)
    ledger_path = root / LEDGER_FILE
    sample, pairs, boosted = read_sample(root / SAMPLE.file), limit_items(read_pairs(root), limit), read_boosted(root)
    try:
        return [compare(pairs, sample, rubric, cfg, ledger_path, overall=overall, progress=progress,
                        retry_failed=retry_failed, boosted=boosted) for cfg in judges]
    finally:
        if ledger_path.exists():
            with contextlib.suppress(ValueError):  # not a ledger: the run's own error says so
                export_comparisons(ledger_path, root / JUDGE_COMPARISONS.file)


def export_comparisons(ledger_path: str | Path, out: str | Path) -> pd.DataFrame:
    """Write ``judge_comparisons.parquet`` from the ledger; returns the frame."""
    frame = comparisons(ledger_path)
    studytables.write(JUDGE_COMPARISONS, frame, out)
    return frame


def position_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Per judge and criterion, over its ``ok`` comparisons: position consistency (the same
    outcome in both orders; ``reports.pairwise.pairs.consistency``) and the first-position win
    rate of decisive verdicts with its Wilson CI (``first_position``)."""
    from reports.pairwise.pairs import consistency, first_position

    ok = frame[frame["judge_status"] == "ok"]
    parts = []
    for criterion, g in ok.groupby("criterion"):
        c = consistency(g, swapped=True)
        f = first_position(g)
        merged = c.merge(f, on=["rater", "rater_kind"], how="outer") if len(f) else c
        parts.append(merged.assign(criterion=criterion))
    cols = ["rater", "criterion", "n_repeated", "n_consistent", "consistency", "n_decisive", "n_first_won", "first_win_rate",
            "ci_low", "ci_high"]
    return pd.concat(parts, ignore_index=True).reindex(columns=cols) if parts else pd.DataFrame(columns=cols)
