"""The study tables' schema module: round trips, clear errors, and ARCHITECTURE.md generated from it."""

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import studytables as st
from sampling import DataSource, SamplingConfig, draw
from tests.judge_support import modules_loaded

ROOT = Path(__file__).resolve().parents[1]


def valid_rows(table: st.Table, n: int = 6) -> pa.Table:
    """n rows of valid values for every column; nullable columns hold a null on every third row."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    make = {pa.string(): lambda c, i: f"{c.name} {i} ভাষা", pa.int8(): lambda c, i: i % 5 + 1,
            pa.int64(): lambda c, i: 10**12 + i, pa.float64(): lambda c, i: i / 4, pa.bool_(): lambda c, i: i % 2 == 0,
            st.tables.UTC: lambda c, i: t0 + timedelta(seconds=i, microseconds=7)}
    return pa.Table.from_arrays(
        [pa.array([None if c.nullable and i % 3 == 0 else make[c.type](c, i) for i in range(n)], c.type)
         for c in table.columns], schema=table.schema)


@pytest.mark.parametrize("name", list(st.TABLES))
def test_round_trip_of_each_table(tmp_path, name):
    table = st.TABLES[name]
    rows = valid_rows(table)
    suffix = Path(table.file).suffix
    for i, data in enumerate([rows, rows.to_pandas()]):
        path = tmp_path / f"{name}{i}{suffix}"
        st.write(table, data, path)
        got = st.read_arrow(table, path)
        assert got.equals(rows), name
        assert got.schema.field(table.columns[0].name).metadata[b"doc"] == table.columns[0].doc.encode()
        df = st.read(table, path)
        assert list(df.columns) == [c.name for c in table.columns]
        for col in table.columns:  # nullable integers stay integers in pandas
            if col.nullable and pa.types.is_integer(col.type):
                assert df[col.name].dtype.name in ("Int8", "Int64")
                assert df[col.name].isna().sum() == rows.column(col.name).null_count
        assert not list(tmp_path.glob("*.tmp"))


def synthetic_source(tmp_path, n=400):
    rng = np.random.default_rng(3)
    recs = {"id": [f"i{i}" for i in range(n)], "language": rng.choice(["hi", "bn"], n).tolist(),
            "task": rng.choice(["qa", "story"], n).tolist(), "prompt": ["p"] * n,
            "response": [" ".join(["नमस्ते"] * int(k)) for k in rng.integers(1, 60, n)]}
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table(recs), path)
    return path


def test_the_samplers_tables_conform(tmp_path):
    """The sampler's frames (pandas str columns, all-null optional columns, int64 strata length_bin) write as the schema says."""
    src = synthetic_source(tmp_path)
    result = draw(DataSource(path=str(src)), src, SamplingConfig(per_stratum=20))
    for table, df in ((st.SAMPLE, result.sample), (st.STRATA, result.strata)):
        path = tmp_path / table.file
        st.write(table, df, path)
        assert pq.read_schema(path).remove_metadata() == table.schema.remove_metadata()
        back = st.read(table, path)
        assert len(back) == len(df)
        assert back["length_bin"].tolist() == df["length_bin"].tolist()
        assert back["stratum"].tolist() == df["stratum"].tolist()
    assert st.read(st.STRATA, tmp_path / "strata.parquet")["source_model"].isna().all()  # not a strata field here


def test_pandas_int8_and_int64_length_bins_both_write_as_int8(tmp_path):
    rows = st.read(st.RATINGS, _written(tmp_path, st.RATINGS))
    for dtype in ("Int8", "Int64", "float64"):
        rows["length_bin"] = pd.Series([1, None, 3, 4, None, 5], dtype=dtype)
        got = st.write(st.RATINGS, rows, tmp_path / "r.parquet")
        assert got.schema.field("length_bin").type == pa.int8()
        assert got.column("length_bin").to_pylist() == [1, None, 3, 4, None, 5]


def _written(tmp_path, table) -> Path:
    path = tmp_path / table.file
    st.write(table, valid_rows(table), path)
    return path


def _error(call, *args) -> str:
    with pytest.raises(st.TableError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_wrong_type_names_file_column_expected_and_found(tmp_path):
    df = valid_rows(st.SAMPLE).to_pandas()
    df["length_bin"] = df["length_bin"].astype(str)
    path = tmp_path / "sample.parquet"
    df.to_parquet(path)  # a file some other tool wrote
    msg = _error(st.read, st.SAMPLE, path)
    assert msg.startswith(str(path)) and "'length_bin'" in msg and "expected int8" in msg and "found string" in msg
    msg = _error(st.write, st.SAMPLE, df, tmp_path / "out.parquet")
    assert "'length_bin'" in msg and "expected int8" in msg


def test_values_that_a_cast_would_change_are_refused_with_their_row(tmp_path):
    df = valid_rows(st.SAMPLE).to_pandas()
    df["length_bin"] = df["length_bin"].astype("int64")
    df.loc[3, "length_bin"] = 300
    msg = _error(st.write, st.SAMPLE, df, tmp_path / "sample.parquet")
    assert "row 4, column 'length_bin'" in msg and "found 300" in msg
    df = valid_rows(st.STRATA).to_pandas()
    df["population"] = df["population"].astype(float)
    df.loc[1, "population"] = 2.5
    assert "row 2, column 'population'" in _error(st.write, st.STRATA, df, tmp_path / "strata.parquet")


def test_missing_and_unexpected_columns(tmp_path):
    df = valid_rows(st.JUDGMENTS).to_pandas().drop(columns=["prompt_hash", "status"])
    path = tmp_path / "judgments.parquet"
    df.to_parquet(path)
    msg = _error(st.read, st.JUDGMENTS, path)
    assert str(path) in msg and "missing column(s) ['prompt_hash', 'status']" in msg
    df = valid_rows(st.REVISIONS).to_pandas().assign(score=1.0)
    assert "unexpected column(s) ['score']" in _error(st.write, st.REVISIONS, df, tmp_path / "revisions.parquet")


def test_null_in_a_column_that_needs_a_value_names_the_row(tmp_path):
    df = valid_rows(st.SAMPLE).to_pandas()
    df.loc[2, "response"] = None
    msg = _error(st.write, st.SAMPLE, df, tmp_path / "sample.parquet")
    assert "row 3, column 'response'" in msg and "found null" in msg


def test_mixed_python_types_in_a_column_name_the_row(tmp_path):
    df = valid_rows(st.SAMPLE).to_pandas().astype({"item_id": object})
    df.loc[4, "item_id"] = 17
    msg = _error(st.write, st.SAMPLE, df, tmp_path / "sample.parquet")
    assert "row 5, column 'item_id'" in msg and "found 17 (int" in msg


def test_timestamps_without_time_zone_are_refused(tmp_path):
    df = valid_rows(st.REVISIONS).to_pandas()
    df["updated_at"] = df["updated_at"].dt.tz_localize(None)
    assert "'updated_at'" in _error(st.write, st.REVISIONS, df, tmp_path / "revisions.parquet")


@pytest.mark.parametrize("damage", ["truncated", "empty", "random", "text"])
def test_corrupted_parquet_is_one_line_naming_the_file(tmp_path, damage):
    path = _written(tmp_path, st.SAMPLE)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "text": b'{"item_id": "a"}\n',
                      "random": np.random.default_rng(0).bytes(len(data))}[damage])
    msg = _error(st.read, st.SAMPLE, path)
    assert msg.startswith(f"{path}: not a Parquet file (truncated?)") and "kasauti sample" in msg


def test_absent_file_says_which_command_writes_it(tmp_path):
    assert "`kasauti judge` writes it" in _error(st.read, st.JUDGMENTS, tmp_path / "judgments.parquet")


def test_failed_write_leaves_the_previous_file(tmp_path):
    path = _written(tmp_path, st.SAMPLE)
    before = path.read_bytes()
    _error(st.write, st.SAMPLE, valid_rows(st.SAMPLE).to_pandas().drop(columns=["item_id"]), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == [path.name]


def test_ratings_import_csv_with_required_columns_only(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("item_id,metric,rater,rater_kind,score,note\n007,fluency,asha,human,2,ok\n"
                    "008,fluency,gpt,judge,1,\n", encoding="utf-8")
    df = st.read(st.RATINGS, path)
    assert df["item_id"].tolist() == ["007", "008"] and df["score"].tolist() == [2.0, 1.0]
    assert df["language"].isna().all() and df["length_bin"].isna().all() and df["status"].isna().all()
    assert st.read_arrow(st.RATINGS, path).column("note").to_pylist() == ["ok", None]  # kept, not dropped


def test_ratings_import_csv_bad_value_names_row_and_column(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("item_id,metric,rater,rater_kind,score,length_bin\na,m,r,human,2,1\nb,m,r,human,two,1\n",
                    encoding="utf-8")
    msg = _error(st.read, st.RATINGS, path)
    assert msg == f"{path}: row 2, column 'score': expected float64, found 'two'"
    path.write_text("item_id,metric,rater,rater_kind\na,m,r,human\n", encoding="utf-8")
    assert "missing column(s) ['score']" in _error(st.read, st.RATINGS, path)
    path.write_bytes(b"")
    assert _error(st.read, st.RATINGS, path).startswith(f"{path}: not a readable CSV file")


def test_selected_columns(tmp_path):
    path = _written(tmp_path, st.SAMPLE)
    df = st.read(st.SAMPLE, path, columns=["item_id", "language", "length_bin"])
    assert list(df.columns) == ["item_id", "language", "length_bin"]
    assert "has no column 'score'" in _error(st.read, st.SAMPLE, path, ["item_id", "score"])


def test_architecture_md_tables_are_generated_from_the_schemas():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert st.render(text) == text, "ARCHITECTURE.md is out of date: run `python -m studytables`"
    for table in st.TABLES.values():  # the study-directory listing names each file and its writer
        top, _, inner = table.file.partition("/")
        if inner:  # a file in a folder: named, with its command, in the folder's row
            row = next(line for line in text.splitlines() if line.startswith(f"| `{top}/` |"))
            assert row.startswith(f"| `{top}/` | `{table.command}` |") or f"`{inner}` (`{table.command}`" in row, table.file
        else:
            assert f"| `{top}` | `{table.command}` |" in text, table.file


def test_regenerating_architecture_md(tmp_path):
    doc = tmp_path / "ARCHITECTURE.md"
    doc.write_text((ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8").replace("| `item_id` |", "| `id` |", 1),
                   encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "studytables"]
    check = subprocess.run([*cmd, "--check", str(doc)], capture_output=True, text=True, env=env, timeout=60)
    assert check.returncode == 1 and "out of date" in check.stderr
    assert subprocess.run([*cmd, str(doc)], capture_output=True, env=env, timeout=60).returncode == 0
    assert doc.read_text(encoding="utf-8") == (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")


def test_studytables_imports_no_stage_and_not_pandas():
    """Every stage may import it: it imports only pyarrow (pandas when a DataFrame is read or written)."""
    assert modules_loaded("import studytables", ("pandas", "kasauti", "rubrics", "sampling", "judge", "annotator",
                                                  "reports", "training")) == []


def test_conform_checks_a_frame_in_memory():
    """What an importer or a Python caller hands a stage is checked like a file: absent optional
    columns become nulls, length_bin becomes Int8, extra columns stay, a wrong type names `where`."""
    df = pd.DataFrame({"item_id": ["a", "b"], "metric": "m", "rater": "r", "rater_kind": "judge", "score": [1, 2],
                       "length_bin": [3, 4], "note": ["x", "y"]})
    got = st.conform(st.RATINGS, df, "PARIKSHA ratings")
    assert list(got.columns) == st.RATINGS.names + ["note"]
    assert got["length_bin"].dtype.name == "Int8" and got["score"].tolist() == [1.0, 2.0]
    assert got["status"].isna().all()
    msg = _error(st.conform, st.RATINGS, df.assign(score=["1", "2"]), "PARIKSHA ratings")
    assert msg == "PARIKSHA ratings: column 'score': expected float64, found string (row 1: '1')"


def test_a_column_given_twice(tmp_path):
    df = valid_rows(st.REVISIONS).to_pandas()
    df = pd.concat([df, df[["comment"]]], axis=1)
    assert "column(s) ['comment'] appear twice" in _error(st.write, st.REVISIONS, df, tmp_path / "revisions.parquet")
    path = tmp_path / "ratings.csv"
    path.write_text("item_id,metric,rater,rater_kind,score,score\na,m,r,human,2,1\n", encoding="utf-8")
    assert "['score'] appear twice" in _error(st.read, st.RATINGS, path)


def test_report_csv_of_a_study_without_judges_reads_back(tmp_path):
    """Human-only statistics have no judge: pandas writes the empty name as an empty cell."""
    cells = valid_rows(st.REPORT_CELLS).to_pandas().assign(judge="")
    path = tmp_path / "report.csv"
    cells.to_csv(path, index=False)
    assert st.read(st.REPORT_CELLS, path)["judge"].isna().all()
    st.write(st.REPORT_CELLS, cells, path)
    assert st.read(st.REPORT_CELLS, path)["judge"].isna().all()


def test_an_all_null_column_of_any_type_is_written_as_its_schema_type(tmp_path):
    """pandas makes a column of Nones float64 (or object): it is the schema's type with nulls."""
    df = pd.DataFrame([{"item_id": "a", "metric": "m", "rater": "r", "rater_kind": "human", "score": 1.0}],
                      columns=st.RATINGS.names)
    assert df["probs"].dtype == "float64"
    path = tmp_path / "ratings.parquet"
    st.write(st.RATINGS, df, path)
    assert pq.read_schema(path).field("probs").type == pa.string()
    assert st.read(st.RATINGS, path)["probs"].isna().all()
