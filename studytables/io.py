"""Writing and reading study tables, checked against their `Table`.

`write` and `read` both conform the data to the table: columns in the table's order, optional
columns that are absent filled with nulls, types cast where no value changes (int64 -> int8 for
values in range, float -> int for whole numbers, large_string -> string, nanosecond -> microsecond
timestamps), and anything else refused with a one-line `TableError` naming the file, the column,
the row where one is at fault (1-based; a CSV header is not counted), what was expected and what
was found.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .tables import Column, Table, type_name

if TYPE_CHECKING:
    import pandas as pd


class TableError(ValueError):
    """A table that does not match its schema, or a file that cannot be read as one; the message is one line."""


def write(table: Table, data: pd.DataFrame | pa.Table, path: str | Path) -> pa.Table:
    """Check `data` against `table` and write it to `path` atomically (a temporary file, then
    `os.replace`, after an fsync): Parquet, or CSV when `path` ends in ``.csv``. Returns the table written."""
    path = Path(path)
    arrow = _conform(table, table.columns, _from_pandas(table, data, str(path)), str(path), strict=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        if path.suffix == ".csv":
            pacsv.write_csv(arrow, tmp)
        else:
            pq.write_table(arrow, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return arrow


def read_arrow(table: Table, path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """The table at `path` (Parquet, or CSV when it ends in ``.csv``), checked and conformed.

    Columns not in the table are kept after its own, unless `columns` selects some of the table's.
    """
    path = Path(path)
    where = str(path)
    wanted = table.columns if columns is None else tuple(_known(table, name, where) for name in columns)
    if not path.is_file():
        raise TableError(f"{where}: no such file; `{table.command}` writes it")
    if path.suffix == ".csv":
        raw = _read_csv(table, path)
    else:
        try:
            present = pq.read_schema(path).names
            raw = pq.read_table(path, columns=None if columns is None else [c.name for c in wanted if c.name in present])
        except (pa.ArrowException, OSError) as exc:
            raise TableError(f"{where}: not a Parquet file (truncated?): {_first_line(exc)}; "
                             f"write it again (`{table.command}` writes it)") from None
    return _conform(table, wanted, raw, where, strict=False, parse=path.suffix == ".csv")


def read(table: Table, path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """`read_arrow` as a pandas DataFrame; nullable integer columns become pandas ``Int8``/``Int64``."""
    return _to_pandas(table, read_arrow(table, path, columns))


def conform(table: Table, data: pd.DataFrame | pa.Table, where: str = "data") -> pd.DataFrame:
    """`data` checked and conformed as `read` does a file (errors name `where`), as a DataFrame."""
    return _to_pandas(table, _conform(table, table.columns, _from_pandas(table, data, where), where, strict=False))


def _to_pandas(table: Table, arrow: pa.Table) -> pd.DataFrame:
    import pandas as pd

    df = arrow.to_pandas()
    nullable_ints = {pa.int8(): pd.Int8Dtype(), pa.int64(): pd.Int64Dtype()}
    for col in table.columns:
        if col.nullable and col.type in nullable_ints and col.name in df.columns:
            df[col.name] = arrow.column(col.name).to_pandas(types_mapper=nullable_ints.get)
    return df


def _known(table: Table, name: str, where: str) -> Column:
    try:
        return table.column(name)
    except KeyError:
        raise TableError(f"{where}: {table.file} has no column {name!r}; its columns are "
                         f"{table.names}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")


def _read_csv(table: Table, path: Path) -> pa.Table:
    """Every known column as text (an empty cell is null); `_conform` parses them with row-level errors."""
    options = pacsv.ConvertOptions(column_types={c.name: pa.string() for c in table.columns}, null_values=[""],
                                   strings_can_be_null=True, quoted_strings_can_be_null=True)
    try:
        return pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowException, OSError) as exc:
        raise TableError(f"{path}: not a readable CSV file: {_first_line(exc)}; expected UTF-8 CSV with a header "
                         f"row and the columns of {table.file}") from None


def _from_pandas(table: Table, data: pd.DataFrame | pa.Table, where: str) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    _unique(list(data.columns), where)
    try:
        return pa.Table.from_pandas(data, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TableError(_refused(table, data, where, exc)) from None


def _refused(table: Table, data: pd.DataFrame, where: str, exc: Exception) -> str:
    """Why arrow refused `data`: the first column it cannot store and its first value of another type."""
    import pandas as pd

    for name in data.columns:
        try:
            pa.array(data[name], from_pandas=True)
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError) as col_exc:
            reason = _first_line(col_exc)
        expected = table.column(name).type_name if name in table.names else "one type"
        present = [(row, v) for row, v in enumerate(data[name].tolist(), 1) if not pd.isna(v)]
        kind = type(present[0][1])
        odd = next(((r, v) for r, v in present if type(v) is not kind), None)
        if odd is None:
            return f"{where}: column {name!r}: expected {expected}: {reason}"
        return (f"{where}: row {odd[0]}, column {name!r}: expected {expected}, found {odd[1]!r} "
                f"({type(odd[1]).__name__} among {kind.__name__} values): {reason}")
    return f"{where}: {_first_line(exc)}"


def _castable(source: pa.DataType, target: pa.DataType, parse: bool) -> bool:
    """Whether `source` values may be cast to `target` (a failed cast then names the row)."""
    if pa.types.is_null(source) or (parse and pa.types.is_string(source)):
        return True
    if pa.types.is_string(target):
        return pa.types.is_string(source) or pa.types.is_large_string(source) or pa.types.is_string_view(source)
    if pa.types.is_integer(target) or pa.types.is_floating(target):
        return pa.types.is_integer(source) or pa.types.is_floating(source)
    if pa.types.is_timestamp(target):
        return pa.types.is_timestamp(source) and source.tz is not None
    return source == target


def _cast(col: Column, values: pa.ChunkedArray, where: str, parse: bool) -> pa.ChunkedArray:
    source = values.type
    if pa.types.is_dictionary(source):
        values, source = values.cast(source.value_type), source.value_type
    if source == col.type:
        return values
    if values.null_count == len(values):  # all null (pandas builds such columns as float64 or object)
        return pa.chunked_array([pa.nulls(len(values), col.type)])
    if not _castable(source, col.type, parse):
        found = f"{source} without a time zone" if pa.types.is_timestamp(source) else type_name(source)
        rows = [(i, v) for i, v in enumerate(values.to_pylist(), 1) if v is not None]
        row, value = next((r for r in rows if not _number_text(r[1])), rows[0])  # the first that is not even a number
        raise TableError(f"{where}: column {col.name!r}: expected {col.type_name}, found {found} "
                         f"(row {row}: {value!r})")
    try:
        return values.cast(col.type, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for row, value in enumerate(values.to_pylist(), 1):
            try:
                pa.array([value], source).cast(col.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise TableError(f"{where}: row {row}, column {col.name!r}: expected {col.type_name}, "
                                 f"found {value!r}") from None
        raise


def _number_text(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _unique(names: list, where: str) -> None:
    twice = sorted({str(n) for n in names if names.count(n) > 1})
    if twice:
        raise TableError(f"{where}: column(s) {twice} appear twice")


def _conform(table: Table, columns: Sequence[Column], data: pa.Table, where: str, strict: bool,
             parse: bool = False) -> pa.Table:
    names = data.column_names
    _unique(names, where)
    missing = [c.name for c in columns if c.required and c.name not in names]
    if missing:
        raise TableError(f"{where}: missing column(s) {missing}; {table.file} needs {table.required} "
                         "(see ARCHITECTURE.md)")
    extra = [n for n in names if n not in table.names]
    if strict and extra:
        raise TableError(f"{where}: unexpected column(s) {extra}; {table.file} has {table.names}")
    arrays = []
    for col in columns:
        values = _cast(col, data.column(col.name), where, parse) if col.name in names else pa.nulls(len(data), col.type)
        if not col.nullable and values.null_count:
            row = values.is_null().to_pylist().index(True) + 1
            raise TableError(f"{where}: row {row}, column {col.name!r}: expected {col.type_name}, found null "
                             f"({values.null_count} such row(s))")
        arrays.append(values)
    schema = table.schema
    fields = [schema.field(c.name) for c in columns]
    if len(columns) == len(table.columns):
        arrays += [data.column(n) for n in extra]
        fields += [data.schema.field(n) for n in extra]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
