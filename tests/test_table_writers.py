"""No stage writes another stage's table, and the `kasauti` package (CLI, study, demo) writes none.

A static scan of the stage packages and kasauti/: every `studytables.write(T, ...)`, every study
table passed to a function whose name does not say it reads (a helper that writes it, as
training's `_write_dataset`), and every raw write (`to_parquet`, `to_csv`, `write_table`,
`write_csv`) outside studytables' own writer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import studytables

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sampling", "judge", "annotator", "reports", "training", "rubrics", "kasauti")
RAW = {"to_parquet", "to_csv", "write_table", "write_csv"}
# raw writes allowed outside studytables/io.py: file -> the package whose outputs they are (report files)
RAW_ALLOWED = {"reports/build.py": "reports", "reports/pairwise/report.py": "reports"}
TABLES = {t.name.upper(): t for t in studytables.TABLES.values()}


def _aliases(tree: ast.Module) -> tuple[set[str], dict[str, str]]:
    """Names bound to the studytables module, and names imported from it that are tables."""
    modules, tables = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "studytables"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "studytables":
            tables |= {a.asname or a.name: a.name for a in node.names if a.name in TABLES}
    return modules, tables


def writes(path: Path) -> list[tuple[int, str]]:
    """(line, table name or `raw`) of each write of a study table in one source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules, imported = _aliases(tree)

    def table_of(node) -> str | None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            return node.attr if node.attr in TABLES else None
        if isinstance(node, ast.Name) and node.id in imported:
            return imported[node.id]
        return None

    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in RAW:
            found.append((node.lineno, "raw"))
        if "read" in name or name == "conform":  # studytables.read/read_arrow/conform and stages' readers
            continue
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            table = table_of(arg)
            if table:
                found.append((node.lineno, table))
    return found


def scan() -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/server/" in rel:  # the embedded server's own modules run in its virtualenv
                continue
            for line, table in writes(path):
                if table == "raw":
                    if RAW_ALLOWED.get(rel) != package:
                        problems.append(f"{rel}:{line}: raw write; write study tables through studytables.write")
                elif TABLES[table].stage != package:
                    problems.append(f"{rel}:{line}: writes {TABLES[table].file}, which is the {TABLES[table].stage} stage's")
    return problems


def test_only_a_tables_stage_writes_it():
    assert scan() == []


def test_the_scan_finds_writes(tmp_path, monkeypatch):
    """The scanner itself: each way of writing is seen (so an empty scan means something)."""
    src = tmp_path / "m.py"
    src.write_text("import studytables as st\nfrom studytables import PAIRS\nimport pyarrow.parquet as pq\n"
                   "st.write(st.JUDGMENTS, df, p)\nhelper(out, PAIRS)\ndf.to_parquet(p)\npq.write_table(t, p)\n"
                   "st.read(st.SAMPLE, p)\n")
    assert writes(src) == [(4, "JUDGMENTS"), (5, "PAIRS"), (6, "raw"), (7, "raw")]
