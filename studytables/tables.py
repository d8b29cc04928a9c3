"""The study tables: one `Table` per file a stage writes into the study directory.

These definitions are the single source of each table's columns, types and meaning:
`studytables.write` / `studytables.read` write and read the tables checked against them, and
ARCHITECTURE.md's column tables are generated from them (``python -m studytables``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

UTC = pa.timestamp("us", tz="UTC")
_TYPE_NAMES = {pa.string(): "string", pa.int8(): "int8", pa.int64(): "int64", pa.float64(): "float64",
               pa.bool_(): "bool", UTC: "timestamp (UTC)", pa.large_string(): "string", pa.string_view(): "string"}


def type_name(type_: pa.DataType) -> str:
    """A type as ARCHITECTURE.md writes it (``string`` for every arrow string type)."""
    return _TYPE_NAMES.get(type_, str(type_))


@dataclass(frozen=True)
class Column:
    """One column: arrow type, whether it may hold nulls, and whether an input file may leave it out
    (an optional column is nullable: `read` fills an absent one with nulls)."""

    name: str
    type: pa.DataType
    doc: str
    nullable: bool = False
    required: bool = True

    @property
    def type_name(self) -> str:
        """The type as ARCHITECTURE.md writes it, e.g. ``string, nullable``."""
        return ", ".join([type_name(self.type)] + ["nullable"] * self.nullable + ["optional"] * (not self.required))


@dataclass(frozen=True)
class Table:
    """A study table: its file in the study directory, the stage and command that write it, its columns."""

    name: str
    file: str
    stage: str
    command: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def schema(self) -> pa.Schema:
        """The arrow schema; each field carries its column doc as ``doc`` metadata."""
        return pa.schema([pa.field(c.name, c.type, c.nullable, {"doc": c.doc}) for c in self.columns])

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        """The column called `name` (KeyError if the table has none)."""
        return {c.name: c for c in self.columns}[name]


S, I8, I64, F64, BOOL = pa.string(), pa.int8(), pa.int64(), pa.float64(), pa.bool_()
ITEM_ID = Column("item_id", S, "joins `sample.item_id`")

SAMPLE = Table("sample", "sample.parquet", "sampling", "kasauti sample", "one row per sampled item", (
    Column("item_id", S, "unique id from the source's id column"),
    Column("language", S, "ISO 639 code, normalised (`hi`, `bn`, `or`, ... ; 639-3 where no 639-1 exists)"),
    Column("task", S, "task label from the source"),
    Column("prompt", S, "the user prompt (for conversations: the last user turn)"),
    Column("response", S, "the response being evaluated"),
    Column("conversation", S, 'JSON list of `{"role","content"}` turns before the response; null for single-turn', True),
    Column("system_prompt", S, "the system prompt, when the source has one", True),
    Column("source_model", S, "the model that generated the response", True),
    Column("context", S, "source context (e.g. the document to summarise)", True),
    Column("length", I64, "response length in grapheme units (see `sampling/lengths.py`)"),
    Column("stratum", S, "e.g. `bn/culture` (strata fields joined by `/`)"),
    Column("length_bin", I8, "1..k (k = 5: quintile) of `length` within the stratum"),
    Column("source_row", I64, "1-based row in the source (JSONL: line number; a directory's files are numbered on "
           "in name order: row in a file = `source_row` - its `row_offset` in `intake.json`)"),
))

STRATA = Table("strata", "strata.parquet", "sampling", "kasauti sample",
               "one row per stratum x length bin: population vs sample", (
    Column("language", S, "the stratum's language, when `language` is a `sampling.strata` field", True, False),
    Column("task", S, "the stratum's task, when `task` is a `sampling.strata` field", True, False),
    Column("source_model", S, "the stratum's source model, when `source_model` is a `sampling.strata` field", True, False),
    Column("stratum", S, "joins `sample.stratum`"),
    Column("length_bin", I8, "1..k"),
    Column("length_min", I64, "shortest response of the bin in the population; null for an empty bin", True),
    Column("length_max", I64, "longest response of the bin in the population; null for an empty bin", True),
    Column("population", I64, "rows of the bin in the data (after intake)"),
    Column("expected", F64, "the bin's exact proportional share of the stratum's sample size"),
    Column("quota", I64, "items allocated to the bin (largest remainder)"),
    Column("sampled", I64, "items drawn from the bin"),
    Column("taken_whole", BOOL, "the stratum had no more rows than `per_stratum` and was taken whole"),
))

JUDGMENTS = Table("judgments", "judgments.parquet", "judge", "kasauti judge",
                  "one row per judge x item x metric x repeat, exported from `judge_ledger.sqlite`", (
    Column("judge", S, "judge name from `kasauti.yaml`"),
    Column("model", S, "the judge's model"),
    Column("rubric", S, "rubric set name"),
    Column("rubric_version", S, "rubric set version"),
    Column("prompt_hash", S, "16 hex chars of SHA-256 over the rendered system and user messages "
                         "(role NUL content NUL ...): the prompt version"),
    Column("mode", S, "`per_metric` or `per_item`"),
    Column("repeat", I64, "0..repeats-1"),
    ITEM_ID,
    Column("metric", S, "rubric metric name"),
    Column("score", I64, "the answer on the JUDGE scale; null unless `status` is `ok`", True),
    Column("human_score", I64, "`score` mapped through the metric's `judge.to_human`; null unless `ok`", True),
    Column("probs", S, "JSON object judge level -> probability (keys are the levels as strings), from the score "
                   "token's `top_logprobs` restricted to the scale's levels and renormalised; null without logprobs", True),
    Column("expected_score", F64, "sum of level x probability (judge scale)", True),
    Column("entropy", F64, "of `probs`, in nats", True),
    Column("reason", S, "the judge's reason for this metric", True),
    Column("raw_answer", S, "the judge's last answer text, verbatim (null when no answer came)", True),
    Column("status", S, "`ok`; `failed` (no usable HTTP answer after the retries, or a 4xx); `unparseable` (not JSON, "
                    "metric or score missing, score not an integer or off the scale, after the re-asks)"),
    Column("error", S, "why, when not `ok`", True),
    Column("attempts", I64, "requests made for the call (retries and re-asks included)"),
    Column("prompt_tokens", I64, "summed over the call's requests, as the server reported", True),
    Column("completion_tokens", I64, "summed over the call's requests, as the server reported", True),
    Column("started_at", UTC, "when the call started"),
    Column("finished_at", UTC, "when the call finished"),
    Column("params", S, "JSON of everything that changes the answer (model, sampling, logprobs, answer format, mode, "
                    "re-asks, extra body) plus `response_format_used`"),
))

RATINGS = Table("ratings", "ratings.parquet", "annotator", "kasauti pull",
                "the long ratings format: one row per item x metric x rater; missing ratings are absent rows, "
                "never NaN scores. Also the report's import format (`.parquet` or `.csv`), where optional "
                "columns may be left out and are read as null", (
    ITEM_ID,
    Column("metric", S, "rubric metric name"),
    Column("rater", S, "annotator username, or judge name"),
    Column("rater_kind", S, "`human` or `judge`"),
    Column("score", F64, "on the rubric's HUMAN scale (a judge's answer mapped by `to_human`)"),
    Column("raw_score", F64, "the rater's own-scale answer (judge scale for judges)", True, False),
    Column("probs", S, "JSON object judge level -> probability, when the judge returned logprobs", True, False),
    Column("model", S, "judge model", True, False),
    Column("prompt_version", S, "judge prompt hash", True, False),
    Column("language", S, "the item's language (give it in an import: there is no sample to take it from)", True, False),
    Column("task", S, "the item's task (as `language`)", True, False),
    Column("length_bin", I8, "the item's length bin (as `language`)", True, False),
    Column("source_model", S, "the model that wrote the response, when known (kept for system-level statistics)",
           True, False),
    Column("status", S, "`submitted`, `draft` or `discarded`; the report uses humans' `submitted` rows only "
                    "(null in an import: `submitted`)", True, False),
    Column("inserted_at", UTC, "humans: when the response was first saved (null for judges)", True, False),
    Column("updated_at", UTC, "humans: when the response was last changed (null for judges)", True, False),
    Column("text_hash", S, "humans (`kasauti pull`): the version of the texts the rating was given for, 16 hex "
                           "chars of SHA-256 over the record's fields (name NUL text NUL ..., sorted)", True, False),
))

REVISIONS = Table("revisions", "revisions.parquet", "annotator", "kasauti pull",
                  "one row per human response (item x annotator)", (
    ITEM_ID,
    Column("annotator", S, "username"),
    Column("revised_response", S, "the annotator's corrected response; null when they did not revise", True),
    Column("comment", S, "the annotator's comment; null when empty", True),
    Column("status", S, "`submitted`, `draft` or `discarded`"),
    Column("language", S, "the item's language (its workspace)"),
    Column("task", S, "the item's task, from the record's metadata", True),
    Column("inserted_at", UTC, "when the response was first saved"),
    Column("updated_at", UTC, "when the response was last changed"),
    Column("text_hash", S, "the version of the texts the response was given for (as in `ratings.parquet`)", True, False),
))

REPORT_CELLS = Table("report_cells", "report/report.csv", "reports", "kasauti report",
                     "one row per metric x judge x facet level x statistic", (
    Column("metric", S, "rubric metric name"),
    Column("judge", S, 'judge name (`"<judge> · calibrated"` for a calibrated judge); null for human-only statistics', True),
    Column("calibrated", BOOL, "the row is of a calibrated judge"),
    Column("facet", S, "`overall`, `task`, `language` or `length_bin`"),
    Column("level", S, "the facet's level (`all` for `overall`)"),
    Column("statistic", S, "the statistic's name"),
    Column("value", F64, "null when it cannot be computed (`note` says why)", True),
    Column("ci_low", F64, "95% item-bootstrap interval, lower end", True),
    Column("ci_high", F64, "95% item-bootstrap interval, upper end", True),
    Column("n_items", I64, "items behind the value"),
    Column("small", BOOL, "fewer than `report.min_items` items"),
    Column("note", S, "why `value` is null", True),
))

# Planned tables (issues 9 and 10): defined here first, so their stages write them through this module.
PAIRS = Table("pairs", "pairs.parquet", "sampling", "kasauti pairs",
              "issue 9 (`sampling.pairs`): one row per pair of responses to the same "
              "prompt by two source models (or two versions of one item: original vs boosted)", (
    Column("pair_id", S, "unique id of the pair (a hash of its items: the same sample gives the same ids)"),
    Column("prompt_id", S, "the prompt both responses answer: a hash of language, task, prompt, conversation, "
                       "system prompt and context"),
    Column("language", S, "the prompt's language"),
    Column("task", S, "the prompt's task"),
    Column("item_a", S, "the first response's `sample.item_id`"),
    Column("item_b", S, "the second response's `sample.item_id`"),
    Column("model_a", S, "`source_model` of `item_a` (the alphabetically first); for original vs boosted pairs, "
                     "the original's label (`item_a` = `item_b`)"),
    Column("model_b", S, "`source_model` of `item_b`; for original vs boosted pairs, the boosted version's label"),
    Column("shown_order", S, "`ab` (`item_a` shown as A) or `ba`, drawn at random per pair"),
    Column("repeat_of", S, "the `pair_id` this pair repeats in swapped order (annotator consistency check)", True),
))

COMPARISONS = Table("comparisons", "comparisons.parquet", "annotator", "kasauti pull",
                    "the long pairwise format: one row per pair x criterion x rater (`annotator.pairwise`: every "
                    "answer native speakers gave in Argilla's pairwise forms, any status)", (
    Column("pair_id", S, "joins `pairs.pair_id`"),
    Column("prompt_id", S, "joins `pairs.prompt_id`"),
    Column("language", S, "the prompt's language"),
    Column("model_a", S, "`pairs.model_a`"),
    Column("model_b", S, "`pairs.model_b`"),
    Column("criterion", S, "rubric criterion name"),
    Column("rater", S, "annotator username, or judge name"),
    Column("rater_kind", S, "`human` or `judge`"),
    Column("outcome", S, "`a` (`model_a` better), `b` or `tie`: in terms of the models, not of the order shown"),
    Column("shown_order", S, "`ab` or `ba`: which response the rater saw first"),
    Column("probs", S, "JSON object outcome -> probability, when the judge returned logprobs", True),
    Column("justification", S, "the rater's optional justification", True),
    Column("status", S, "`submitted`, `draft` or `discarded` (judges: `submitted`)"),
    Column("length_a", I64, "length of `model_a`'s response in grapheme units, for the length bias (`sample.length` "
                       "at pull, or an importer's; null when unknown)", True, False),
    Column("length_b", I64, "length of `model_b`'s response (as `length_a`)", True, False),
))

_CMP = {c.name: c for c in COMPARISONS.columns}
JUDGE_COMPARISONS = Table("judge_comparisons", "judge_comparisons.parquet", "judge", "kasauti judge --pairs",
                          "issue 9: the judge rows of the long pairwise format (the columns of `comparisons.parquet`, "
                          "then the judge's): one row per pair x shown order x criterion x judge x repeat, exported from "
                          "`judge_ledger.sqlite`; every call has its row, `ok` or not", (
    *(_CMP[n] for n in ("pair_id", "prompt_id", "language", "model_a", "model_b", "criterion", "rater", "rater_kind")),
    Column("outcome", S, "`a` (`model_a` better), `b` or `tie`: the verdict in terms of the models; null unless "
                         "`judge_status` is `ok`", True),
    _CMP["shown_order"],
    Column("probs", S, "JSON object outcome (`a`, `b`, `tie`) -> probability, from the verdict token's `top_logprobs` "
                       "restricted to the verdicts and renormalised; null without logprobs", True),
    Column("justification", S, "the judge's reason", True),
    Column("status", S, "`submitted` when `judge_status` is `ok`, else `discarded`"),
    *(_CMP[n] for n in ("length_a", "length_b")),
    Column("task", S, "the prompt's task"),
    Column("model", S, "the judge's model"),
    Column("prompt_hash", S, "16 hex chars of SHA-256 over the rendered messages: the prompt version"),
    Column("repeat", I64, "repeat index, 0-based"),
    Column("verdict", S, "the judge's answer as shown: `A` (the response shown first), `B` or `tie`; null unless `ok`", True),
    Column("judge_status", S, "`ok`; `failed` (no usable HTTP answer after the retries); `unparseable` (not a JSON "
                              "object with a verdict of exactly `A`, `B` or `tie`, after the re-asks)"),
    Column("error", S, "why, when not `ok`", True),
    Column("raw_answer", S, "the judge's last answer text, verbatim (null when no answer came)", True),
    Column("attempts", I64, "requests made for the call (retries and re-asks included)"),
))

DECISIONS = Table("decisions", "decisions.parquet", "reports", "kasauti escalate",
                  "issue 10 (`reports.decisions`): one row per sampled item x metric of its task family: whether "
                  "the judge decides or native speakers do", (
    ITEM_ID,
    Column("metric", S, "rubric metric name"),
    Column("language", S, "the item's language"),
    Column("decided_by", S, "`judge` (confidence at or above the threshold) or `humans` (below it, or no threshold)"),
    Column("judge", S, "the judge whose score and confidence are used (`panel` for agreement across judges)"),
    Column("judge_score", F64, "the judge's score on the human scale; null when the judge gave none", True),
    Column("confidence", F64, "the judge's confidence in `judge_score`; null when the judge gave none (always escalated)", True),
    Column("human_consensus", F64, "the consensus of the item's submitted human ratings; null without one "
           "(not rated, or a tie): `kasauti escalate` pushes items decided by humans that have none", True),
    Column("threshold", F64, "the metric x language threshold on `confidence`; null when no threshold could "
           "guarantee the target (humans decide every item of the cell)", True),
    Column("target", F64, "the agreement with human consensus the threshold guarantees at least"),
    Column("guaranteed_agreement", F64, "the one-sided (1 - delta) lower confidence bound of that agreement on the "
           "calibration items at or above the threshold; null without a threshold", True),
    Column("coverage", F64, "share of the metric x language's sampled items the judge decides"),
    Column("provenance", S, "JSON: how the threshold was chosen (test, target, delta, confidence source, judge, "
           "calibration items, items without consensus, grid, date)"),
))

RECORDS = Table("records", "argilla/records.parquet", "annotator", "kasauti push",
                "the map from each item to its opaque Argilla record id (the only link between records and items; "
                "written before the records it names are uploaded, never shrinks)", (
    Column("record_id", S, "the record's external id in Argilla: 32 random hex characters"),
    ITEM_ID,
))

SLICES = Table("slices", "slices.parquet", "annotator", "kasauti push --random",
               "one row per item of the study's random calibration slice: the items `kasauti push --random N` "
               "drew, and how (issue 10: PPI counts their human labels as a uniformly random subset)", (
    ITEM_ID,
    Column("drawn_by", S, "`random`: the first N items of the seeded permutation of the sample (`annotator.slices`)"),
    Column("seed", I64, "the permutation's seed: an item's place is SHA-256 of the seed and its item id"),
    Column("rank", I64, "1-based place of the item in that permutation of the sample"),
    Column("inclusion_probability", F64, "N / the sample's items: every item of the sample had this chance to be drawn"),
    Column("stratum", S, "the item's `sample.stratum`"),
    Column("drawn_at", UTC, "when the push that first drew the item ran"),
))

PAIR_RECORDS = Table("pair_records", "argilla/pair_records.parquet", "annotator", "kasauti push --pairs",
                     "the map from each pair to its opaque Argilla record id (as `argilla/records.parquet`, for pairs)", (
    Column("record_id", S, "the record's external id in Argilla: 32 random hex characters"),
    Column("pair_id", S, "joins `pairs.pair_id`"),
))

EXPORT_ACCEPTED = Table("export_accepted", "export/accepted/data/train.parquet", "training", "kasauti export",
                        "one row per accepted item, with why it was accepted; a Hugging Face dataset with its card "
                        "(`export/accepted/README.md`)", (
    ITEM_ID,
    Column("language", S, "the item's language"),
    Column("task", S, "the item's task"),
    Column("prompt", S, "`sample.prompt`"),
    Column("response", S, "`sample.response`"),
    Column("conversation", S, "`sample.conversation`", True),
    Column("system_prompt", S, "`sample.system_prompt`", True),
    Column("context", S, "`sample.context`", True),
    Column("source_model", S, "`sample.source_model`", True),
    Column("decided_by", S, "`humans` (the human consensus met every rule) or `judge` (no human rated the item; the "
                        "calibrated judge met every rule in cells whose report verdict allows it)"),
    Column("accepted_by", S, "the acceptance rule, as text"),
    Column("evidence", S, "JSON object metric -> the evidence: consensus value and number of raters, or the judge, "
                     "its score, its calibrated score and the report's verdict cell"),
))

EXPORT_REVISIONS = Table("export_revisions", "export/revisions/data/train.parquet", "training", "kasauti export",
                         "one row per revision pair (original item -> one annotator's revised response, or an "
                         "external pair); a Hugging Face dataset with its card (`export/revisions/README.md`)", (
    ITEM_ID,
    Column("annotator", S, "who revised it; null for an external pair", True),
    Column("source", S, "`study`, or the label of the external input"),
    Column("language", S, "the item's language"),
    Column("task", S, "the item's task; null when the input has none", True),
    Column("original_instruction", S, "the original instruction (`sample.prompt`)"),
    Column("original_input", S, "the original input (`sample.context`; empty when none)"),
    Column("original_response", S, "the original response"),
    Column("revised_instruction", S, "the revised instruction (annotators revise the response only)"),
    Column("revised_input", S, "the revised input"),
    Column("revised_response", S, "the revised response"),
    Column("edit_distance", F64, "normalised Levenshtein distance between the two whole triples (0 = same, 1 = all "
                            "changed), computed by kasauti (`training.pairs.edit_distance`), never read from an input"),
    Column("ratings", S, "JSON object metric -> this annotator's submitted score of the original; null for an "
                    "external pair", True),
    Column("comment", S, "the annotator's comment", True),
))

BOOSTED = Table("boosted", "boosted.parquet", "training", "kasauti boost",
                "one row per item the booster rewrote into a complete item, linked to its original (unparseable "
                "outputs stay in `boost.sqlite` with their status and raw text)", (
    ITEM_ID,
    Column("language", S, "the item's language"),
    Column("task", S, "the item's task; null when the input has none", True),
    Column("prompt", S, "the boosted instruction"),
    Column("context", S, "the boosted input (empty when none)"),
    Column("response", S, "the boosted response"),
    Column("original_prompt", S, "the original instruction"),
    Column("original_context", S, "the original input (empty when none)"),
    Column("original_response", S, "the original response"),
    Column("edit_distance", F64, "normalised Levenshtein distance between the original and the boosted triple "
                            "(`training.pairs.edit_distance`)"),
    Column("source_model", S, "the original's `source_model` (`sampling.pairs.boosted_pairs` pairs the two versions)",
           True),
    Column("booster", S, "SHA-256 of the booster's model files"),
    Column("params", S, "JSON object of the generation parameters"),
))

EVAL_RESPONSES = Table("eval_responses", "eval/responses.parquet", "training", "kasauti eval",
                       "issue 11 (`training.evaluate`): one row per evaluation prompt x model, the base model's and the "
                       "fine-tuned student's greedy responses that the pairwise judge compares (reused by a later run "
                       "while the model, prompt and generation parameters are the same)", (
    Column("model", S, "`base` or `student`"),
    Column("model_hash", S, "SHA-256 of the model's files (`training.boost.model_hash`)"),
    Column("benchmark", S, "`heldout` (the student's held-out accepted items), or a benchmark of `training.eval."
                           "benchmarks_dir` (`alpaca_eval`, `mt_bench`: their first turn)"),
    Column("prompt_id", S, "the held-out item's `item_id`, or `<benchmark>/<language>/<record number, 1-based>`"),
    Column("language", S, "the prompt's language"),
    Column("task", S, "the item's task, or the benchmark's name"),
    Column("messages", S, "JSON list of the chat messages the model was given"),
    Column("response", S, "the model's response"),
    Column("params", S, "JSON object of the generation parameters"),
))

EVAL = Table("eval", "eval/eval.parquet", "training", "kasauti eval",
             "issue 11 (`training.evaluate`): the base model against the fine-tuned student, one row per model x "
             "benchmark x language x metric (x judge and criterion for the pairwise judge's rows)", (
    Column("model", S, "`base` or `student` (lm-evaluation-harness rows); `student` for the pairwise rows, which "
                       "compare it with `base`"),
    Column("benchmark", S, "`heldout` (the held-out accepted items: lm-evaluation-harness on their responses, the judge "
                           "on both models' responses to their prompts), `alpaca_eval` or `mt_bench`"),
    Column("language", S, "the language, or `all` (every language of the benchmark, pairwise rows)"),
    Column("metric", S, "lm-evaluation-harness over the held-out accepted responses (lower is better): "
                        "`bits_per_byte`, `byte_perplexity`, `word_perplexity` (`loglikelihood_rolling`: the response "
                        "alone) and `response_bits_per_byte` (`loglikelihood` of the response given its prompt in the "
                        "chat template; the template's whitespace after the assistant header is scored too); "
                        "pairwise judge: "
                        "`win_rate` (student over base, ties count half), `win_rate_no_ties` (wins / decisive), "
                        "`tie_share`, `position_consistency` (both orders of a pair agree; language `all`)"),
    Column("value", F64, "the metric's value; null when undefined (e.g. `win_rate_no_ties` with only ties)", True),
    Column("ci_low", F64, "2.5% bound of the 95% prompt-bootstrap CI (pairwise win rates); null otherwise", True),
    Column("ci_high", F64, "97.5% bound, as `ci_low`", True),
    Column("n", I64, "documents scored (lm-evaluation-harness) or judge comparisons counted (pairwise: a pair asked in "
                     "both orders counts twice; for `position_consistency`, pairs asked in both orders)"),
    Column("judge", S, "the judge's name (pairwise rows); null for lm-evaluation-harness rows", True),
    Column("criterion", S, "the pairwise criterion (`overall`, or a metric); null for lm-evaluation-harness rows", True),
))

# the ratings and revisions of escalated items (`kasauti pull`): RATINGS and REVISIONS in files of their own, kept
# apart from the random calibration ratings
RATINGS_ESCALATED_FILE, REVISIONS_ESCALATED_FILE = "ratings_escalated.parquet", "revisions_escalated.parquet"

TABLES: dict[str, Table] = {t.name: t for t in (SAMPLE, STRATA, JUDGMENTS, RATINGS, REVISIONS, RECORDS, SLICES,
                                                PAIR_RECORDS, REPORT_CELLS, PAIRS, COMPARISONS, JUDGE_COMPARISONS, DECISIONS, EXPORT_ACCEPTED,
                                                EXPORT_REVISIONS, BOOSTED, EVAL_RESPONSES, EVAL)}
