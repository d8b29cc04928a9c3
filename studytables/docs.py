"""ARCHITECTURE.md's column tables, generated from the `Table` definitions.

Each table's section in ARCHITECTURE.md holds a block between ``<!-- studytables:NAME -->`` and
``<!-- /studytables:NAME -->``; `render` rewrites every block from `TABLES`, and the test suite
checks that the file equals its rendering.
"""

from __future__ import annotations

import re

from .tables import TABLES, Table

_BLOCK = re.compile(r"(<!-- studytables:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /studytables:(?P=name) -->)", re.S)


def markdown(table: Table) -> str:
    """The table as ARCHITECTURE.md shows it: a line naming file, writer and grain, then its columns."""
    lines = [f"`{table.file}`, written by `{table.command}` (`{table.stage}/`): {table.doc}.", "",
             "| column | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{c.name}` | {c.type_name} | {c.doc.replace('|', '&#124;')} |" for c in table.columns]
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    """`text` with every studytables block replaced by its table's `markdown`.

    Raises ValueError naming blocks of unknown tables and tables that have no block.
    """
    names = [m.group("name") for m in _BLOCK.finditer(text)]
    unknown = sorted(set(names) - set(TABLES))
    absent = [n for n in TABLES if n not in names]
    if unknown or absent:
        raise ValueError(f"studytables blocks: unknown {unknown}, missing {absent}; "
                         "each table in studytables.TABLES needs exactly one block")
    return _BLOCK.sub(lambda m: m.group(1) + markdown(TABLES[m.group("name")]) + m.group(4), text)
