"""Bad input at `kasauti init` and `kasauti sample`: a one-line error (exit 2) naming file, row and
column, or rows counted in intake.json so that rows read = kept + excluded; never a traceback."""

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kasauti.cli import app

DEFAULT_COLUMNS = {"id": "id", "language": "language", "task": "task", "prompt": "prompt", "response": "response"}
HI = "यह एक अच्छा उत्तर है जो हिंदी में लिखा गया है।"
TA = "இது தமிழில் எழுதப்பட்ட ஒரு நல்ல பதில்."


def records(n=6, **override):
    out = []
    for i in range(n):
        lang, text = ("hi", HI) if i % 2 == 0 else ("ta", TA)
        out.append({"id": f"r{i}", "language": lang, "task": "qa", "prompt": "q?", "response": f"{text} {i}", **override})
    return out


def write_jsonl(path: Path, recs) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return path


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def make_study(tmp_path: Path, data_file: Path, **yaml_extra) -> Path:
    """A study on `data` (written by `kasauti init`), with top-level YAML sections replaced."""
    study = tmp_path / "study"
    r = cli("init", study, "--data", data_file, "--per-stratum", 2)
    assert r.exit_code == 0, r.output
    if yaml_extra:
        import yaml

        cfg = yaml.safe_load((study / "kasauti.yaml").read_text(encoding="utf-8"))
        for key, value in yaml_extra.items():
            cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
        (study / "kasauti.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return study


def assert_error(r, *parts: str) -> str:
    """Exit 2, no traceback, one line on stderr holding every part."""
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def intake(study: Path) -> dict:
    """intake.json, after checking that rows read = kept + excluded."""
    info = json.loads((study / "intake.json").read_text(encoding="utf-8"))
    assert info["rows_read"] == info["rows_kept"] + sum(e["count"] for e in info["excluded"].values())
    return info


def sample_ok(study: Path) -> dict:
    r = cli("sample", study)
    assert r.exit_code == 0, (r.output, r.exception)
    assert "nan" not in r.stdout and "Traceback" not in r.output
    return intake(study)


# --- files that cannot be read: one line naming file (and row, column) ------------------------------------


def test_empty_csv_and_parquet(tmp_path):
    for name in ("data.csv", "data.parquet", "data.jsonl"):
        data = write_jsonl(tmp_path / name, records())
        study = make_study(tmp_path / name.replace(".", "_"), data)
        data.write_bytes(b"")  # emptied after init, which refuses an empty file
        assert_error(cli("sample", study), name, "empty")


def test_header_only_csv_writes_no_sample(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("id,language,task,prompt,response\n", encoding="utf-8")
    study = make_study(tmp_path, data)
    assert_error(cli("sample", study), "data.csv", "no rows")
    assert not (study / "sample.parquet").exists()
    assert intake(study)["rows_read"] == 0


def test_no_row_kept_is_an_error_with_counts(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", records(4, response=" "))
    study = make_study(tmp_path, data)
    line = assert_error(cli("sample", study), "data.jsonl", "4 rows", "kept none", "empty_response", "row 1", "'response'")
    assert "intake.json" in line
    assert not (study / "sample.parquet").exists()
    assert intake(study)["excluded"]["empty_response"]["count"] == 4


def test_latin1_csv_names_line(tmp_path):
    data = tmp_path / "data.csv"
    data.write_bytes("id,language,task,prompt,response\nr1,hi,qa,q,ok\nr2,hi,qa,q,caf\xe9\n".encode("latin-1"))
    study = make_study(tmp_path, data)
    assert_error(cli("sample", study), "data.csv: line 3, byte 15: not UTF-8")


@pytest.mark.parametrize("bad_line", [1, 3])
def test_non_utf8_jsonl_names_line(tmp_path, bad_line):
    lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in records(4)]
    lines[bad_line - 1] = lines[bad_line - 1].replace(b'"q?"', b'"caf\xe9"')
    data = tmp_path / "data.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    study = make_study(tmp_path, data)
    assert_error(cli("sample", study), "data.jsonl", f"line {bad_line}", "UTF-8")


def test_ragged_csv_names_row(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("id,language,task,prompt,response\nr1,hi,qa,q,ok\nr2,hi,qa,q,a,b\n", encoding="utf-8")
    study = make_study(tmp_path, data)
    assert_error(cli("sample", study), "data.csv: line 3 has 6 fields where the header has 5", "quote")


def test_parquet_bytes_in_jsonl(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", records())
    study = make_study(tmp_path, data)
    pq.write_table(pa.Table.from_pylist(records()), data)
    assert_error(cli("sample", study), "data.jsonl", "Parquet")
    assert_error(cli("init", tmp_path / "other", "--data", data), "data.jsonl", "Parquet")


def test_format_parquet_on_jsonl(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", records())
    study = make_study(tmp_path, data, data={"format": "parquet"})
    assert_error(cli("sample", study), "data.jsonl", "not a Parquet file", "data.format")


def test_json_array_latin1_and_not_objects(tmp_path):
    data = tmp_path / "data.json"
    data.write_bytes(b'[{"id": "caf\xe9"}]')
    assert_error(cli("sample", make_study(tmp_path / "a", data)), "data.json", "line 1", "UTF-8")
    data.write_text('[{"id": "a", "language": "hi", "task": "qa", "prompt": "p", "response": "x"}, 3]', encoding="utf-8")
    assert_error(cli("sample", make_study(tmp_path / "b", data)), "data.json", "row 2", "JSON object")


# --- the study config -----------------------------------------------------------------------------------------


def test_length_bins_out_of_range(tmp_path):
    study = make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", records()), sampling={"length_bins": 1000})
    assert_error(cli("sample", study), "kasauti.yaml", "sampling.length_bins")


@pytest.mark.parametrize(("columns", "named"), [
    ({"prompt": "response"}, "columns.prompt and columns.response"),
    ({"language": "task"}, "columns.language and columns.task"),
])
def test_two_fields_on_one_column(tmp_path, columns, named):
    data = write_jsonl(tmp_path / "data.jsonl", records())
    study = tmp_path / "study"
    assert cli("init", study, "--data", data).exit_code == 0
    text = (study / "kasauti.yaml").read_text(encoding="utf-8")
    for field, column in columns.items():
        text = re.sub(rf"(?m)^    {field}: {field}\b", f"    {field}: {column}", text)
    (study / "kasauti.yaml").write_text(text, encoding="utf-8")
    assert_error(cli("sample", study), "kasauti.yaml", named)


def test_latin1_yaml_names_line(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "kasauti.yaml").write_bytes(b"name: x\n# caf\xe9\ndata: {path: d.jsonl}\n")
    assert_error(cli("sample", study), "kasauti.yaml", "line 2", "UTF-8")


def test_duplicate_yaml_key_names_line_and_key(tmp_path):
    study = make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", records()))
    cfg = study / "kasauti.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "rubric: updesh\n", encoding="utf-8")
    line_no = len(cfg.read_text(encoding="utf-8").splitlines())
    assert_error(cli("sample", study), "kasauti.yaml", f"line {line_no}", "'rubric'", "twice")


def test_per_stratum_true_is_not_an_int(tmp_path):
    study = make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", records()), sampling={"per_stratum": True})
    assert_error(cli("sample", study), "kasauti.yaml", "sampling.per_stratum")


def test_duplicate_strata_fields(tmp_path):
    study = make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", records()), sampling={"strata": ["task", "task"]})
    assert_error(cli("sample", study), "kasauti.yaml", "sampling.strata")


# --- init ----------------------------------------------------------------------------------------------------


def test_init_on_a_file(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", records())
    assert_error(cli("init", data, "--data", data), "data.jsonl", "not a directory")


@pytest.mark.parametrize("args", [("--per-stratum", "0"), ("--format", "bogus"), ("--rubric", "no-such-rubric")])
def test_init_rejects_bad_options_and_leaves_nothing(tmp_path, args):
    data = write_jsonl(tmp_path / "data.jsonl", records())
    study = tmp_path / "study"
    assert_error(cli("init", study, "--data", data, *args), args[0].lstrip("-").split("-")[0])
    assert not (study / "kasauti.yaml").exists()
    assert cli("init", study, "--data", data).exit_code == 0  # the corrected re-run works


def test_init_data_must_exist(tmp_path):
    assert_error(cli("init", tmp_path / "study", "--data", tmp_path / "nope.jsonl"), "nope.jsonl", "not found")
    assert not (tmp_path / "study" / "kasauti.yaml").exists()


def test_init_relative_data_is_relative_to_cwd(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "data.jsonl", records())
    monkeypatch.chdir(tmp_path)
    assert cli("init", "studies/one", "--data", "data.jsonl").exit_code == 0
    assert sample_ok(tmp_path / "studies" / "one")["rows_kept"] == 6
    monkeypatch.chdir(tmp_path / "studies")  # the study still finds its data from elsewhere
    assert sample_ok(Path("one"))["rows_kept"] == 6


def test_sample_on_a_file_suggests_init_with_data(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", records())
    line = assert_error(cli("sample", data), "data.jsonl", "is a file", "--data")
    assert f"kasauti init {data}" not in line


# --- rows: counted, never coerced or dropped without a word ------------------------------------------------


def test_directory_of_mixed_formats_is_refused(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    write_jsonl(d / "a.jsonl", records())
    study = make_study(tmp_path, d)
    pd.DataFrame(records()).to_csv(d / "b.csv", index=False)
    pq.write_table(pa.Table.from_pylist(records()), d / "c.parquet")
    assert_error(cli("sample", study), "a.jsonl", "b.csv", "c.parquet")
    assert_error(cli("init", tmp_path / "other", "--data", d), "a.jsonl", "b.csv", "c.parquet")


def test_directory_of_one_format_lists_its_files(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    write_jsonl(d / "a.jsonl", records(4))
    write_jsonl(d / "b.jsonl", [{**r, "id": "b" + r["id"]} for r in records(3)])
    (d / ".ipynb_checkpoints").mkdir()  # hidden folders are not data
    write_jsonl(d / ".ipynb_checkpoints" / "a-checkpoint.jsonl", records(4))
    (d / "c.jsonl").write_text("\n", encoding="utf-8")  # no records, still listed
    info = sample_ok(make_study(tmp_path, d))
    assert info["rows_read"] == 7 and info["rows_kept"] == 7
    assert info["files"] == [{"file": "a.jsonl", "rows_read": 4, "row_offset": 0}, {"file": "b.jsonl", "rows_read": 3, "row_offset": 4},
                             {"file": "c.jsonl", "rows_read": 0, "row_offset": 7}]
    sample = pd.read_parquet(tmp_path / "study" / "sample.parquet").set_index("item_id")
    assert sample.loc["br1", "source_row"] == 4 + 2  # b.jsonl line 2


def test_nested_values_in_text_columns_are_excluded(tmp_path):
    recs = records(4)
    recs[1]["response"] = ["a", "list"]
    recs[2]["response"] = {"text": HI}
    info = sample_ok(make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", recs)))
    assert info["rows_kept"] == 2 and info["excluded"]["non_text"]["count"] == 2
    assert info["excluded"]["non_text"]["examples"][0].startswith("data.jsonl: row 2, column 'response': expected text, got list")


def test_struct_column_in_parquet_is_refused_with_a_hint(tmp_path):
    recs = [{**r, "response": {"text": r["response"]}} for r in records()]
    data = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist(recs), data)
    assert_error(cli("sample", make_study(tmp_path, data)), "data.parquet", "'response'", "struct", "columns.response")


def test_first_valid_copy_of_an_id_is_kept(tmp_path):
    recs = records(4)
    recs[0]["response"] = ""  # invalid first copy of r0
    recs[2]["id"] = "r0"  # a valid later copy
    info = sample_ok(make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", recs)))
    assert info["rows_kept"] == 3
    assert info["excluded"] == {"empty_response": info["excluded"]["empty_response"]}
    assert "r0" in set(pd.read_parquet(tmp_path / "study" / "sample.parquet")["item_id"])


def test_duplicate_emptying_a_stratum_prints_no_nan(tmp_path):
    recs = records(4)
    recs[1]["id"] = "r0"  # the only other ta row duplicates a hi id
    recs[3]["id"] = "r2"
    study = make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", recs))
    r = cli("sample", study)
    assert r.exit_code == 0 and "nan" not in r.stdout and "ta/qa" not in r.stdout
    info = intake(study)
    assert info["rows_kept"] == 2 and info["excluded"]["duplicate_id"]["count"] == 2
    assert [t["stratum"] for t in info["length_tests"]] == ["hi/qa"]


def test_jsonl_columns_are_the_union_of_keys(tmp_path):
    recs = records(4)
    del recs[0]["prompt"], recs[0]["task"]
    info = sample_ok(make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", recs)))
    assert info["rows_kept"] == 3 and info["excluded"]["missing_task"]["count"] == 1


def test_jsonl_column_in_no_record_is_named(tmp_path):
    recs = [{k: v for k, v in r.items() if k != "task"} | {"tsak": "qa"} for r in records()]
    study = make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", recs))
    r = cli("sample", study)
    assert r.exit_code == 2 and "columns.task = 'task'" in r.stderr and "did you mean 'tsak'" in r.stderr


def test_dictionary_encoded_parquet_strings(tmp_path):
    df = pd.DataFrame(records())
    df["language"] = df["language"].astype("category")
    df["task"] = df["task"].astype("category")
    data = tmp_path / "data.parquet"
    df.to_parquet(data)
    assert sample_ok(make_study(tmp_path, data))["rows_kept"] == 6


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_integer_ids_are_ids(tmp_path, fmt):
    recs = records(6)
    for i, r in enumerate(recs):
        r["id"] = i + 1 if fmt == "parquet" or i % 2 else r["id"]
    if fmt == "jsonl":
        data = write_jsonl(tmp_path / "data.jsonl", recs)
    else:
        data = tmp_path / "data.parquet"
        pq.write_table(pa.Table.from_pylist(recs), data)
    info = sample_ok(make_study(tmp_path, data))
    n_int = 6 if fmt == "parquet" else 3
    assert info["rows_kept"] == 6 and info["warnings"]["numeric_id"]["count"] == n_int
    ids = pd.read_parquet(tmp_path / "study" / "sample.parquet")["item_id"]
    assert "2" in set(ids) and ids.map(type).eq(str).all()


def test_bool_and_float_ids_are_not_ids(tmp_path):
    recs = records(4)
    recs[1]["id"] = True
    recs[2]["id"] = 1.5
    info = sample_ok(make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", recs)))
    assert info["rows_kept"] == 2 and info["excluded"]["non_text"]["count"] == 2


def test_csv_na_strings_are_text(tmp_path):
    recs = records(4)
    for r, word in zip(recs, ["NA", "null", "N/A", "NaN"]):
        r["response"] = word
    data = tmp_path / "data.csv"
    pd.DataFrame(recs).to_csv(data, index=False)
    study = make_study(tmp_path, data, sampling={"check_script": False})
    assert sample_ok(study)["rows_kept"] == 4
    assert set(pd.read_parquet(study / "sample.parquet")["response"]) == {"NA", "null", "N/A", "NaN"}


def test_tab_separated_csv_gets_a_delimiter_hint(tmp_path):
    data = tmp_path / "data.csv"
    pd.DataFrame(records()).to_csv(data, index=False, sep="\t")
    r = cli("sample", make_study(tmp_path, data))
    assert r.exit_code == 2 and "tab-separated" in r.stderr and ".tsv" in r.stderr


def test_unknown_language_example_shows_the_label(tmp_path):
    recs = records(4)
    recs[1]["language"] = "xyzzy"
    info = sample_ok(make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", recs)))
    assert "'xyzzy'" in info["excluded"]["unknown_language"]["examples"][0]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_byte_order_mark_is_read(tmp_path, fmt):
    data = tmp_path / f"data.{fmt}"
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records()) if fmt == "jsonl" else json.dumps(records())
    data.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert sample_ok(make_study(tmp_path, data))["rows_kept"] == 6


def test_init_study_named_like_a_number(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "data.jsonl", records())
    monkeypatch.chdir(tmp_path)
    r = cli("init", "2024", "--data", "data.jsonl")
    assert r.exit_code == 0, r.output
    assert sample_ok(Path("2024"))["rows_kept"] == 6


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("data.xlsx", b"x", "cannot tell the format"),
    ("data.jsonl", b"", "empty"),
    ("folder", None, "no data files"),
])
def test_init_refuses_data_it_cannot_read(tmp_path, name, content, expected):
    data = tmp_path / name
    if content is None:
        data.mkdir()
        (data / "README.md").write_text("notes", encoding="utf-8")
    else:
        data.write_bytes(content)
    assert_error(cli("init", tmp_path / "study", "--data", data), name, expected)
    assert not (tmp_path / "study" / "kasauti.yaml").exists()


def test_parquet_read_as_csv_is_named(tmp_path):
    data = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist(records()), data)
    study = make_study(tmp_path, data, data={"format": "csv"})
    assert_error(cli("sample", study), "data.parquet", "is a Parquet file", "data.format")


def test_stratum_the_filters_empty_prints_no_nan(tmp_path):
    recs = records(8)
    for r in recs[1::2]:
        r["response"] = "இது " * 40  # every ta response is one word repeated
    study = make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", recs),
                       sampling={"filters": {"repetition": {"enabled": True, "max_ratio": 0.5}}})
    info = sample_ok(study)
    assert info["filters"]["rejected"]["repetition"]["count"] == 4
    assert {t["stratum"]: t["sampled"] for t in info["length_tests"]} == {"hi/qa": 2, "ta/qa": 0}


def test_column_named_twice_in_the_header(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("id,language,task,prompt,response,response\nr1,hi,qa,q,first,second\n", encoding="utf-8")
    assert_error(cli("sample", make_study(tmp_path, data)), "data.csv", "['response']", "more than once")


def test_hf_dataset_dict_reads_the_configured_split(tmp_path):
    import datasets

    d = tmp_path / "hf"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(records(4)),
                          "test": datasets.Dataset.from_list(records(2))}).save_to_disk(str(d))
    study = make_study(tmp_path, d, data={"split": "test"})
    assert sample_ok(study)["rows_read"] == 2
    study = make_study(tmp_path / "other", d, data={"split": "dev"})
    assert_error(cli("sample", study), "hf", "'dev'", "['train', 'test']", "data.split")


def test_format_of_a_directory_on_a_file(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", records())
    assert_error(cli("init", tmp_path / "study", "--data", data, "--format", "hf"), "data.jsonl", "reads a directory")


def test_study_inside_its_data_directory(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    pq.write_table(pa.Table.from_pylist(records()), d / "a.parquet")
    assert_error(cli("init", d / "study", "--data", d), "inside its data directory")
    assert not (d / "study").exists()
    study = make_study(tmp_path, d)
    (study / "kasauti.yaml").rename(d / "kasauti.yaml")
    (d / "kasauti.yaml").write_text((d / "kasauti.yaml").read_text(encoding="utf-8").replace('path: "../data"', 'path: "."'), encoding="utf-8")
    assert_error(cli("sample", d), "inside its data directory")


def test_missing_source_model_is_counted_when_it_stratifies(tmp_path):
    recs = records(6)
    for i, r in enumerate(recs):
        r["model"] = ["m1", None, " "][i % 3]
    study = make_study(tmp_path, write_jsonl(tmp_path / "data.jsonl", recs),
                       data={"columns": {**DEFAULT_COLUMNS, "source_model": "model"}},
                       sampling={"strata": ["language", "source_model"]})
    info = sample_ok(study)
    assert info["rows_kept"] == 6 and info["warnings"]["unknown_source_model"]["count"] == 4
    assert info["warnings"]["unknown_source_model"]["examples"][0].startswith("data.jsonl: row 2, column 'model'")
    assert {t["stratum"] for t in info["length_tests"]} == {"hi/m1", "hi/unknown", "ta/m1", "ta/unknown"}


def test_strata_fields_are_checked_in_the_config(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", records())
    assert_error(cli("sample", make_study(tmp_path / "a", data, sampling={"strata": ["lang"]})), "kasauti.yaml", "sampling.strata.0")
    study = make_study(tmp_path / "b", data, sampling={"strata": ["language", "source_model"]})
    assert_error(cli("sample", study), "data.jsonl", "columns.source_model", "kasauti.yaml")
