"""The study tables' schemas, and writing and reading them checked against those schemas.

`write` and `read` write and read the tables of the study directory checked against `TABLES`
(`conform` checks a frame in memory); ARCHITECTURE.md's column tables are generated from `TABLES`
(``python -m studytables``). The stages are to write and read their tables only through it.
Imports only pyarrow (pandas when a DataFrame is read or written).
"""

from .docs import markdown, render
from .io import TableError, conform, read, read_arrow, write
from .tables import (BOOSTED, COMPARISONS, DECISIONS, EVAL, EVAL_RESPONSES, EXPORT_ACCEPTED, EXPORT_REVISIONS,
                     JUDGE_COMPARISONS, JUDGMENTS, PAIR_RECORDS, PAIRS, RATINGS, RATINGS_ESCALATED_FILE, RECORDS,
                     REPORT_CELLS, REVISIONS, REVISIONS_ESCALATED_FILE, SAMPLE, SLICES, STRATA, TABLES, Column, Table)

__all__ = [
    "BOOSTED", "COMPARISONS", "DECISIONS", "EVAL", "EVAL_RESPONSES", "EXPORT_ACCEPTED", "EXPORT_REVISIONS",
    "JUDGE_COMPARISONS", "JUDGMENTS", "PAIR_RECORDS", "PAIRS",
    "RATINGS", "RATINGS_ESCALATED_FILE", "RECORDS", "REPORT_CELLS", "REVISIONS", "REVISIONS_ESCALATED_FILE", "SAMPLE",
    "SLICES", "STRATA",
    "TABLES", "Column", "Table", "TableError", "conform", "markdown", "read", "read_arrow", "render", "write",
]
