"""`kasauti pairs` and `kasauti export` through the real CLI: the files they write, the counts they
print, and one-line errors (exit 2) that keep what was there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

import studytables as st
from kasauti.cli import app
from sampling.pairs import make_pairs
from tests.test_export import both, closed_port, load, ratings, revisions, sample, study
from tests.test_intake_bad import assert_error

ROOT = Path(__file__).resolve().parents[1]
RULE = {"accept": [{"metric": "linguistic_acceptability", "consensus": "median", "at_least": 2, "min_raters": 2},
                   {"metric": "task_quality", "at_least": 1}]}


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def kasauti(*args, env=None):
    return subprocess.run([sys.executable, "-m", "kasauti", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def test_pairs_writes_pairs_parquet_from_a_sampled_study_and_prints_the_counts(tmp_path):
    from kasauti.demo import demo_study

    root = demo_study(tmp_path / "demo").root
    assert kasauti("sample", root).returncode == 0
    run = kasauti("pairs", root, "--design", "balanced", "--per-prompt", 1, "--repeat-share", 0.5, "--seed", 3)
    assert run.returncode == 0, run.stderr
    expected = make_pairs(st.read(st.SAMPLE, root / "sample.parquet"), "balanced", seed=3, n_per_prompt=1,
                          repeat_share=0.5)
    written = st.read(st.PAIRS, root / "pairs.parquet")
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    c = expected.attrs["counts"]
    assert c["pairs"] > 0 and c["repeats"] > 0 and c["items_alone"] > 0
    out = " ".join(run.stdout.split())
    assert f"{c['pairs']} pairs" in out and f"{c['repeats']} repeats" in out
    assert f"{c['items_alone']} alone at their prompt" in out
    assert f"{c['items_without_source_model']} without a source model" in out
    assert str(root / "pairs.parquet") in out


def test_pairs_without_a_sample_or_with_an_unknown_design_is_one_line_exit_2(tmp_path):
    from kasauti.demo import demo_study

    root = demo_study(tmp_path / "demo").root
    assert_error(cli("pairs", root), "sample.parquet", "kasauti sample")
    st.write(st.SAMPLE, sample(["a", "b"]), root / "sample.parquet")
    assert_error(cli("pairs", root, "--design", "random"), "design 'random'", "balanced")
    assert not (root / "pairs.parquet").exists()


def crafted(tmp_path: Path, export: dict | None = RULE) -> Path:
    """A study whose sample, ratings and revisions are written through studytables, with a kasauti.yaml."""
    items = pd.concat([sample(["a", "b", "c"]), sample(["t1", "t2"], language="ta")], ignore_index=True)
    rated = ratings(both("a", "h1", 2, 2) + both("a", "h2", 2, 1)      # accepted
                    + both("b", "h1", 2, 2) + both("b", "h2", 1, 2)    # median 1.5: not accepted
                    + both("t1", "h1", 2, 2) + both("t1", "h2", 2, 2)  # accepted
                    + both("t2", "h1", 2, 0) + both("t2", "h2", 2, 0))  # task quality 0; c: no human rating
    revised = revisions([("a", "h1", "उत्तर: नई दिल्ली।", "submitted"), ("b", "h2", "उत्तर b: दिल्ली।", "submitted"),
                         ("a", "h2", items.loc[0, "response"], "submitted"), ("c", "h1", "मसौदा", "draft")])
    root = study(tmp_path / "s", items, rated, revised)
    cfg = {"name": "crafted", "data": {"path": "data.jsonl"}, **({"export": export} if export else {})}
    (root / "kasauti.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return root


def files(directory: Path) -> dict:
    return {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def test_export_writes_both_datasets_and_prints_counts_and_what_was_left_out(tmp_path):
    root = crafted(tmp_path)
    r = cli("export", root)
    assert r.exit_code == 0, (r.output, r.exception)
    out = " ".join(r.stdout.split())
    accepted, pairs = load(root, "accepted"), load(root, "revisions")
    assert sorted(accepted["item_id"]) == ["a", "t1"] and len(pairs) == 2
    for lang, n in Counter(accepted["language"]).items():
        assert f"{lang}: {n}" in out
    assert f"humans: {len(accepted)}" in out
    assert f"{len(accepted)} accepted items" in out and f"{len(pairs)} revision pairs" in out
    for why in ("linguistic_acceptability: median below 2: 1", "task_quality: median below 1: 1", "no human rating: 1",
                "not submitted (draft or discarded): 1", "pre-fill left unchanged): 1"):
        assert why in out, why
    assert str(root / "export" / "accepted") in out and str(root / "export" / "revisions") in out


def test_export_without_an_export_section_says_what_to_add(tmp_path):
    root = crafted(tmp_path, export=None)
    line = assert_error(cli("export", root), str(root / "kasauti.yaml"), "no `export:` section", "export: {accept: [{metric:")
    example = yaml.safe_load(line[line.index("export: {"):line.index("}]}") + 3])
    assert set(example) == {"export"} and example["export"]["accept"][0]["at_least"] is not None
    assert not (root / "export").exists()


def test_export_section_with_unknown_keys_or_metric_is_refused(tmp_path):
    root = crafted(tmp_path, export={**RULE, "share": 0.3})
    assert_error(cli("export", root), str(root / "kasauti.yaml"), "export.share")
    root = crafted(tmp_path / "m", export={"accept": [{"metric": "fluency", "at_least": 1}]})
    assert_error(cli("export", root), str(root / "kasauti.yaml"), "unknown metric 'fluency'")
    assert not (root / "export").exists()


def test_export_with_no_accepted_item_is_exit_2_and_keeps_the_previous_export(tmp_path):
    root = crafted(tmp_path)
    assert cli("export", root).exit_code == 0
    before = files(root / "export")
    st.write(st.RATINGS, ratings(both("a", "h1", 0, 0) + both("a", "h2", 0, 0)), root / "ratings.parquet")
    assert_error(cli("export", root), "no item of 5 meets the acceptance rule", "no human rating: 4",
                 f"a previous export in {root / 'export'} is kept")
    assert files(root / "export") == before


def test_push_to_hub_refusals_are_one_line_exit_2_and_keep_the_export(tmp_path):
    root = crafted(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    run = subprocess.run([sys.executable, "-m", "kasauti", "export", str(root), "--push-to-hub", "me/data"],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "no HF_TOKEN in the environment" in run.stderr
    assert load(root, "accepted")["item_id"].tolist() and (root / "export" / "revisions" / "README.md").is_file()
    before = files(root / "export")
    secret = "hf_secret_never_printed_456"
    run = kasauti("export", root, "--push-to-hub", "me/data",
                  env={"HF_TOKEN": secret, "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"})
    assert run.returncode == 2 and "did not accept the upload" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and secret not in run.stdout + run.stderr
    assert re.search(r"export stays in \S*accepted", run.stderr)
    assert set(files(root / "export")) == set(before)


def test_the_study_template_shows_an_export_section_that_validates_once_uncommented(tmp_path):
    import rubrics
    from kasauti.study import Study

    data = tmp_path / "data.jsonl"
    data.write_text('{"id": "1", "language": "hi", "task": "qa", "prompt": "q", "response": "r"}\n', encoding="utf-8")
    assert cli("init", tmp_path / "s", "--data", data).exit_code == 0
    path = tmp_path / "s" / "kasauti.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("# export:")
    block = [line[2:] for line in lines[start:] if line.startswith("# ")]
    path.write_text("\n".join(lines[:start] + block) + "\n", encoding="utf-8")
    config = Study(path.parent).config.export
    assert config is not None and len(config.accept) == 2 and config.judge is None
    config.check(rubrics.load_rubric_set("pariksha"))
