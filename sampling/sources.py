"""Read a data source as a stream of Arrow record batches, whatever its format.

Every reader yields `Chunk`s: source row numbers, the requested columns as strings (the
conversation column's nested values JSON-encoded, integer ids as their decimal text) and the
problems found while parsing, so validation and sampling see one shape. For JSONL the row
number is the line number. A directory of data files is read file by file in name order; row
numbers then run on across files (`Chunk.offset` turns them back into each file's own rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

BATCH_ROWS = 65_536
JSON_BATCH_BYTES = 8 << 20  # JSONL batches are cut by size too: one batch of long rows is held as Python strings
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv", ".tsv": "csv"}
FILE_FORMATS = {"jsonl", "json", "parquet", "csv"}
HF_SAVED = ("dataset_info.json", "state.json", "dataset_dict.json")  # what `save_to_disk` writes at the top


class SourceError(ValueError):
    """A data source that cannot be read as configured; the message names the file and column."""


@dataclass
class Chunk:
    rows: pa.Array  # int64 source row numbers (1-based within `file`, plus `offset`)
    batch: pa.RecordBatch  # requested columns, all string
    file: str = ""  # the file the rows come from, as named in messages
    offset: int = 0  # rows of earlier files in a directory: row in `file` = row - offset
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # (row, column, what was wrong)
    numeric_ids: np.ndarray | None = None  # rows whose id was an integer, turned into text
    keys: set[str] | None = None  # JSON: the keys the chunk's records have


def not_utf8(path: Path, data: bytes, exc: UnicodeDecodeError, first_line: int = 1) -> str:
    """One line naming the file, line and byte offset of the first byte that is not UTF-8."""
    line = first_line + data.count(b"\n", 0, exc.start)
    column = exc.start - data.rfind(b"\n", 0, exc.start)
    return f"{path}: line {line}, byte {column}: not UTF-8 text; re-save the file as UTF-8"


def _data_files(path: Path) -> list[Path]:
    """A directory's data files by name, hidden files and folders (".cache", ".ipynb_checkpoints") left out."""
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def _several_formats(path: Path, files: list[Path]) -> SourceError:
    listing = ", ".join(f"{p.relative_to(path)} ({EXTENSIONS[p.suffix]})" for p in files)
    return SourceError(f"{path}: holds data files of several formats ({listing}) and one format is read; "
                       "move the others out or point data.path at one file")


def source_files(path: Path, fmt: str) -> list[Path]:
    """The files a file-format source reads: the file itself, or a directory's files of that format."""
    if not path.is_dir():
        return [path]
    files = _data_files(path)
    if any(EXTENSIONS[p.suffix] != fmt for p in files):
        raise _several_formats(path, files)
    if not files:
        raise SourceError(f"{path}: no {fmt} files in the directory")
    return files


def detect_format(path: Path, fmt: str) -> str:
    """The format to read `path` as: `fmt`, or for "auto" the one its extension or directory names."""
    if path.is_file():
        with path.open("rb") as fh:
            head = fh.read(4)
        if not head:
            raise SourceError(f"{path}: the file is empty (0 bytes)")
        if head == b"PAR1" and (EXTENSIONS.get(path.suffix) if fmt == "auto" else fmt) != "parquet":
            raise SourceError(f"{path}: is a Parquet file; name it .parquet or set data.format: parquet")
    if fmt in {"hf", "pariksha"} and not path.is_dir():
        raise SourceError(f"{path}: data.format {fmt} reads a directory; set data.format to the file's format")
    if fmt != "auto":
        return fmt
    if path.is_dir():
        if (path / "responses").is_dir() and any((path / "responses").glob("output_*.json")):
            return "pariksha"
        if any((path / name).exists() for name in HF_SAVED):
            return "hf"
        files = _data_files(path)
        found = {EXTENSIONS[p.suffix] for p in files}
        if not found:
            raise SourceError(f"{path}: holds no data files ({', '.join(EXTENSIONS)}) and is not a saved Hugging Face "
                              "dataset; point data.path at the data, or set data.format: hf for a dataset folder")
        if len(found) > 1:
            raise _several_formats(path, files)
        return found.pop()
    if path.suffix not in EXTENSIONS:
        raise SourceError(f"{path}: cannot tell the format from the extension; set data.format in kasauti.yaml")
    return EXTENSIONS[path.suffix]


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t)


def _as_text(arr: pa.Array, column: str, field_name: str, where: Path) -> tuple[pa.Array, np.ndarray | None]:
    """(text array, mask of integer ids turned into text or None). Only the conversation may be nested."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    if _is_text(t):
        return arr.cast(pa.string()), None
    if field_name == "conversation" and (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t)):
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in arr.to_pylist()], pa.string()), None
    if field_name == "id" and pa.types.is_integer(t):
        return arr.cast(pa.string()), arr.is_valid().to_numpy(zero_copy_only=False)
    hint = f"; point columns.{field_name} at a column of text" if pa.types.is_struct(t) or pa.types.is_list(t) else ""
    raise SourceError(f"{where}: column {column!r} holds {t} values, expected text{hint}")


def _chunk(start: int, batch: pa.RecordBatch | pa.Table, fields: Mapping[str, str], where: Path) -> Chunk:
    arrays, numeric = [], None
    for c, f in fields.items():
        col = batch.column(c)
        arr, mask = _as_text(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col, c, f, where)
        arrays.append(arr)
        numeric = mask if mask is not None else numeric
    rows = pa.array(range(start, start + batch.num_rows), pa.int64())
    return Chunk(rows, pa.RecordBatch.from_arrays(arrays, names=list(fields)), where.name, numeric_ids=numeric)


@contextmanager
def _reading(path: Path, fmt: str):
    """Arrow's and the adapters' read errors as one-line `SourceError`s naming the file."""
    try:
        yield
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        msg = str(exc).splitlines()[0]
        if fmt == "parquet":
            raise SourceError(f"{path}: not a Parquet file Arrow can read ({msg}); check data.format in kasauti.yaml") from None
        if fmt == "csv" and "invalid UTF8" in msg:
            raise SourceError(_first_non_utf8(path)) from None
        raise SourceError(f"{path}: cannot read it as {fmt} ({msg}); check data.format in kasauti.yaml") from None
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, SourceError) or fmt not in {"hf", "pariksha"}:
            raise
        raise SourceError(f"{path}: cannot read it as {fmt} ({type(exc).__name__}: {exc})") from None


def _first_non_utf8(path: Path) -> str:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return not_utf8(path, line, exc, lineno)
    return f"{path}: not UTF-8 text; re-save the file as UTF-8"


def available_columns(path: Path, fmt: str, split: str = "train") -> list[str] | None:
    """Column names of a source, from its schema; None for JSON, whose records may each have other keys."""
    if fmt in {"jsonl", "json"}:
        return None
    if fmt == "pariksha":
        from .pariksha import COLUMNS

        return list(COLUMNS)
    with _reading(path, fmt):
        if fmt == "hf":
            return _unique(path, _hf_dataset(path, split).column_names)
        names = None
        for f in source_files(path, fmt):
            with _reading(f, fmt):
                got = _unique(f, open_parquet(f).schema_arrow.names if fmt == "parquet" else next(_open_csv(f, None)).names)
            names = got if names is None else [c for c in names if c in got]
        return names


def _unique(path: Path, names: list[str]) -> list[str]:
    """Column names, refusing a name that appears twice (which column would be read is not clear)."""
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise SourceError(f"{path}: column names {twice} appear more than once in the header; rename the copies")
    return names


def open_parquet(path: Path) -> pq.ParquetFile:
    """A Parquet file read as a stream: pre-buffering would cache every row group read (GBs)."""
    return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)


def _open_csv(path: Path, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    """Stream a CSV with every value a string; only an empty field is missing ("NA", "null" and "NaN" are text)."""
    bad: list = []

    def invalid(row) -> str:
        bad.append(row)
        return "error"

    parse = pacsv.ParseOptions(delimiter="\t" if path.suffix == ".tsv" else ",", newlines_in_values=True, invalid_row_handler=invalid)
    convert = pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True)
    if columns is not None:
        convert.column_types = {c: pa.string() for c in columns}
        convert.include_columns = columns
    try:
        reader = pacsv.open_csv(path, parse_options=parse, convert_options=convert)
        yield reader.schema
        yield from reader
    except pa.ArrowInvalid:
        if not bad:
            raise
        row = bad[0]
        with path.open("rb") as fh:
            line = next((n for n, raw in enumerate(fh, 1) if raw.rstrip(b"\r\n").decode("utf-8", "replace") == row.text), None)
        at = f"line {line}" if line else f"the row {row.text[:60]!r}"
        raise SourceError(f"{path}: {at} has {row.actual_columns} fields where the header has {row.expected_columns}; "
                          "quote values that hold the delimiter") from None


def _hf_dataset(path: Path, split: str):
    """A local Hugging Face dataset: its only split, or `split`."""
    import datasets

    datasets.disable_progress_bars()
    if any((path / name).exists() for name in HF_SAVED):
        ds = datasets.load_from_disk(str(path))
    else:
        ds = datasets.load_dataset(str(path))
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) == 1:
            return next(iter(ds.values()))
        if split not in ds:
            raise SourceError(f"{path}: no split {split!r}; the dataset has {list(ds)}: set data.split")
        return ds[split]
    return ds


def _json_records(path: Path, fmt: str) -> Iterator[tuple[int, object, int]]:
    """(row number, decoded record, size in bytes) for JSONL (line numbers) or a JSON array (1-based index)."""
    if fmt == "json":
        raw = path.read_bytes()
        try:
            data = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise SourceError(not_utf8(path, raw, exc)) from None
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        if not isinstance(data, list):
            raise SourceError(f"{path}: expected a JSON array of records, got {type(data).__name__} "
                              "(for one record per line, set data.format: jsonl)")
        for i, rec in enumerate(data, start=1):
            yield i, rec, 0
        return
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a byte-order mark may open the file
            except UnicodeDecodeError as exc:
                raise SourceError(not_utf8(path, raw, exc, lineno)) from None
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line), len(raw)
            except json.JSONDecodeError as exc:
                raise SourceError(f"{path}: line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def iter_chunks(path: Path, fmt: str, fields: Mapping[str, str], split: str = "train") -> Iterator[Chunk]:
    """Stream the requested columns (`fields`: column -> the field it holds) of a source as `Chunk`s."""
    fields = dict(fields)
    columns = list(fields)
    if fmt in FILE_FORMATS:
        offset = 0
        for f in source_files(path, fmt):
            name, last = str(f.relative_to(path)) if f != path else f.name, 0
            with _reading(f, fmt):
                for chunk in _file_chunks(f, fmt, fields):
                    chunk.file, chunk.offset = name, offset
                    if offset:
                        chunk.rows = pc.add(chunk.rows, offset)
                        chunk.problems = [(r + offset, c, m) for r, c, m in chunk.problems]
                    last = chunk.rows[-1].as_py() - offset if len(chunk.rows) else last
                    yield chunk
            if not last:  # a file without rows is still listed as read
                empty = pa.RecordBatch.from_arrays([pa.array([], pa.string())] * len(columns), names=columns)
                yield Chunk(pa.array([], pa.int64()), empty, name, offset)
            offset += last
        return
    with _reading(path, fmt):
        if fmt == "hf":
            ds = _hf_dataset(path, split)
            start = 1
            for table in ds.select_columns(columns).with_format("arrow").iter(batch_size=BATCH_ROWS):
                yield _chunk(start, table, fields, path)
                start += table.num_rows
        elif fmt == "pariksha":
            from .pariksha import flatten_responses

            table = pa.Table.from_pandas(flatten_responses(path), preserve_index=False)
            yield _chunk(1, table, fields, path)
        else:
            raise SourceError(f"{path}: unknown format {fmt!r}")


def _file_chunks(path: Path, fmt: str, fields: dict[str, str]) -> Iterator[Chunk]:
    columns = list(fields)
    if fmt in {"jsonl", "json"}:
        yield from _json_batches(path, fmt, fields)
        return
    if fmt == "parquet":
        batches = open_parquet(path).iter_batches(batch_size=BATCH_ROWS, columns=columns)
    else:
        batches = _open_csv(path, columns)
        next(batches)  # the schema
    start = 1
    for batch in batches:
        yield _chunk(start, batch, fields, path)
        start += batch.num_rows


def _json_batches(path: Path, fmt: str, fields: dict[str, str]) -> Iterator[Chunk]:
    columns = list(fields)
    id_column = next((c for c, f in fields.items() if f == "id"), None)
    rows, values, problems, numeric, keys = [], {c: [] for c in columns}, [], [], set()
    size = 0

    def flush() -> Chunk:
        arrays = [pa.array(values[c], pa.string()) for c in columns]
        out = Chunk(pa.array(rows, pa.int64()), pa.RecordBatch.from_arrays(arrays, names=columns), path.name, 0,
                    list(problems), np.isin(rows, numeric) if numeric else None, set(keys))
        for x in (rows, problems, numeric, keys, *values.values()):
            x.clear()
        return out

    for rowno, rec, nbytes in _json_records(path, fmt):
        if not isinstance(rec, dict):
            raise SourceError(f"{path}: row {rowno}: expected a JSON object, got {type(rec).__name__}")
        rows.append(rowno)
        keys.update(rec)
        for c in columns:
            v = rec.get(c)
            if isinstance(v, (list, dict)) and fields[c] == "conversation":
                v = json.dumps(v, ensure_ascii=False)
            elif c == id_column and isinstance(v, int) and not isinstance(v, bool):
                v = str(v)
                numeric.append(rowno)
            elif v is not None and not isinstance(v, str):
                problems.append((rowno, c, f"expected text, got {type(v).__name__} {json.dumps(v, ensure_ascii=False)[:40]}"))
                v = None
            values[c].append(v)
        size += nbytes
        if len(rows) >= BATCH_ROWS or size >= JSON_BATCH_BYTES:
            size = 0
            yield flush()
    if rows:
        yield flush()
