"""Rubric sets: built-in sets, rendering, judge answer schema, family lookup, bad files, CLI."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import rubrics
from rubrics.load import SETS_DIR

REPO = Path(__file__).resolve().parents[1]
UPDESH_FAMILIES = {
    "translation": ["adequacy", "translation_fluency", "terminology", "register_preservation", "target_script_fidelity"],
    "summarization": ["faithfulness", "coverage", "conciseness", "summary_coherence", "summary_fluency"],
    "multi_turn_dialogue": [
        "context_retention",
        "turn_relevance",
        "persona_consistency",
        "naturalness",
        "toxicity",
    ],
    "creative_writing": ["prompt_adherence", "creativity", "narrative_coherence", "cultural_grounding", "fluency"],
    "reasoning": [
        "answer_correctness",
        "reasoning_validity",
        "reasoning_clarity",
        "format_compliance",
        "unsupported_assumptions",
    ],
}


def all_metrics(rs: rubrics.RubricSet) -> list[rubrics.Metric]:
    return [m for f in rs.families for m in f.metrics]


# --- built-in sets ------------------------------------------------------------------------


def test_builtin_names():
    assert rubrics.builtin_names() == ["pariksha", "updesh"]


def test_pariksha_loads():
    rs = rubrics.load_rubric_set("pariksha")
    assert rs.name == "pariksha"
    assert rs.metric_names == ["linguistic_acceptability", "task_quality", "hallucination"]
    assert rs.family_for("anything at all").name == "general"


def test_updesh_loads_with_five_families_of_five_metrics():
    rs = rubrics.load_rubric_set("updesh")
    assert {f.name: [m.name for m in f.metrics] for f in rs.families} == UPDESH_FAMILIES
    assert len(all_metrics(rs)) == 25
    assert len(rs.metric_names) == 25, "metric names are unique across families"


def test_updesh_scales_and_mapping():
    """Human 0..2, judge 1..5 mapped 1,2->0 3->1 4,5->2 for every metric, as the YAML documents."""
    rs = rubrics.load_rubric_set("updesh")
    for m in all_metrics(rs):
        assert m.human.values == [0, 1, 2], m.name
        assert m.judge.scale.values == [1, 2, 3, 4, 5], m.name
        assert m.judge.to_human == {1: 0, 2: 0, 3: 1, 4: 2, 5: 2}, m.name
        assert m.measurement == "ordinal"


@pytest.mark.parametrize(
    ("name", "worse_is_higher"),
    [("pariksha", {"hallucination"}), ("updesh", {"unsupported_assumptions", "toxicity"})],
)
def test_higher_is_worse_metrics_start_at_absence(name, worse_is_higher):
    """Where higher is worse, the lowest level on both scales means 'none'."""
    rs = rubrics.load_rubric_set(name)
    assert {m.name for m in all_metrics(rs) if not m.higher_is_better} == worse_is_higher
    for mname in worse_is_higher:
        m = next(m for m in all_metrics(rs) if m.name == mname)
        assert m.human.levels[0].label in {"no", "none"}
        assert m.judge.scale.levels[0].label in {"no", "none"}


def test_family_and_metric_lookup():
    rs = rubrics.load_rubric_set("updesh")
    fam = rs.family("reasoning")
    assert fam.metric("answer_correctness").title == "Correct final answer"
    with pytest.raises(KeyError, match="no metric 'adequacy'"):
        fam.metric("adequacy")
    with pytest.raises(KeyError, match="no family 'poetry'"):
        rs.family("poetry")


@pytest.mark.parametrize(
    ("task", "family"),
    [
        # Updesh's own subset names
        ("creative_writing", "creative_writing"),
        ("dialog_gen", "multi_turn_dialogue"),
        ("summarization", "summarization"),
        ("translation_enxx", "translation"),
        ("translation_xxen", "translation"),
        ("math", "reasoning"),
        ("mcq", "reasoning"),
        ("logical_reasoning", "reasoning"),
        ("cultural_multihop_reasoning", "reasoning"),
        ("brain_teaser", "reasoning"),
        ("fermi", "reasoning"),
        ("fs_cot_flow", "reasoning"),
        ("rc", "reasoning"),
        # other typical labels
        ("Story", "creative_writing"),
        ("poem_generation", "creative_writing"),
        ("multi-turn", "multi_turn_dialogue"),
        ("multi_turn_chat", "multi_turn_dialogue"),
        ("conversation", "multi_turn_dialogue"),
        ("news_summarisation", "summarization"),
        ("Machine Translation", "translation"),
        ("logic_puzzle", "reasoning"),
        # order decides overlaps: the more specific family wins
        ("dialogue_summarization", "summarization"),
        ("story_translation", "translation"),
        ("multihop_reasoning", "reasoning"),
    ],
)
def test_family_for_typical_labels(task, family):
    assert rubrics.load_rubric_set("updesh").family_for(task).name == family


def test_family_for_unknown_task_names_it():
    rs = rubrics.load_rubric_set("updesh")
    with pytest.raises(KeyError, match=r"no family for task 'image_captioning'.*tasks"):
        rs.family_for("image_captioning")


# --- rendering ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pariksha", "updesh"])
def test_guidelines_contain_every_title_and_anchor(name):
    rs = rubrics.load_rubric_set(name)
    md = rubrics.render_guidelines(rs)
    assert md.startswith(f"# {rs.title}")
    for fam in rs.families:
        assert f"## {fam.title}" in md
        # glob patterns in code spans, so Markdown does not read '*' as emphasis
        assert "Applies to tasks: " + ", ".join(f"`{t}`" for t in fam.tasks) + "." in md
        for m in fam.metrics:
            assert f"### {m.title}" in md
            for lv in m.human.levels:
                assert f"| {lv.value} | {lv.label} | {lv.anchor} |" in md


def test_guidelines_for_chosen_families_only():
    rs = rubrics.load_rubric_set("updesh")
    md = rubrics.render_guidelines(rs, [rs.family("translation")])
    assert "### Adequacy" in md
    assert "### Creativity and originality" not in md


EXAMPLE_TASKS = {
    "translation": "translation_enxx",
    "summarization": "summarization",
    "multi_turn_dialogue": "dialog_gen",
    "creative_writing": "creative_writing",
    "reasoning": "math",
}


def _answer_format(system: str) -> dict:
    line = system.split("in this form:\n", 1)[1].strip().splitlines()[0]
    return json.loads(line)


@pytest.mark.parametrize("family", list(UPDESH_FAMILIES))
def test_judge_messages_per_family(family):
    rs = rubrics.load_rubric_set("updesh")
    fam = rs.family(family)
    item = {
        "task": EXAMPLE_TASKS[family],
        "prompt": "PROMPT-TEXT",
        "response": "RESPONSE-TEXT",
        "context": "SOURCE-DOCUMENT" if family == "summarization" else None,
    }
    if family == "multi_turn_dialogue":
        item["conversation"] = [
            {"role": "user", "content": "TURN-ONE"},
            {"role": "assistant", "content": "TURN-TWO"},
            {"role": "user", "content": "TURN-THREE"},
        ]
    msgs = rubrics.judge_messages(fam.metrics, item, "Odia")
    assert [m["role"] for m in msgs] == ["system", "user"]
    system, user = msgs[0]["content"], msgs[1]["content"]
    assert "Odia" in system and "Language: Odia" in user
    assert f"Task type: {EXAMPLE_TASKS[family]}" in user
    assert "RESPONSE-TEXT" in user
    fmt = _answer_format(system)
    assert list(fmt) == [m.name for m in fam.metrics]
    for m in fam.metrics:
        assert set(fmt[m.name]) == {"reason", "score"}
        assert type(fmt[m.name]["score"]) is int and fmt[m.name]["score"] in m.judge.scale.values  # never a quoted string
        assert f"### {m.name}: {m.title}" in user
        assert m.judge.question in user
        for lv in m.judge.scale.levels:
            assert f"- {lv.value} ({lv.label}): {lv.anchor}" in user
    if family == "multi_turn_dialogue":
        assert user.index("TURN-ONE") < user.index("TURN-TWO") < user.index("TURN-THREE") < user.index("RESPONSE-TEXT")
        assert "PROMPT-TEXT" not in user
    else:
        assert "PROMPT-TEXT" in user
    assert ("SOURCE-DOCUMENT" in user) == (family == "summarization")


def test_judge_response_schema():
    rs = rubrics.load_rubric_set("updesh")
    metrics = rs.family("reasoning").metrics
    schema = rubrics.judge_response_schema(metrics)
    jsonschema.Draft202012Validator.check_schema(schema)
    good = {m.name: {"reason": "ok", "score": 4} for m in metrics}
    jsonschema.validate(good, schema)

    def rejects(answer):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(answer, schema)

    for bad_score in (0, 6, "4", 3.5, None):
        bad = copy.deepcopy(good)
        bad["answer_correctness"]["score"] = bad_score
        rejects(bad)
    missing = copy.deepcopy(good)
    del missing["format_compliance"]
    rejects(missing)
    no_reason = copy.deepcopy(good)
    del no_reason["reasoning_clarity"]["reason"]
    rejects(no_reason)
    extra = copy.deepcopy(good)
    extra["adequacy"] = {"reason": "x", "score": 3}
    rejects(extra)


def test_judge_response_schema_follows_each_metrics_scale():
    """PARIKSHA's judge answers 0..2 (and 0..1 for hallucination): 0 is valid there, 2 is not for the binary one."""
    metrics = rubrics.load_rubric_set("pariksha").families[0].metrics
    schema = rubrics.judge_response_schema(metrics)
    ok = {"linguistic_acceptability": {"reason": "", "score": 0}, "task_quality": {"reason": "", "score": 2},
          "hallucination": {"reason": "", "score": 1}}
    jsonschema.validate(ok, schema)
    ok["hallucination"]["score"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(ok, schema)


# --- malformed rubric files -----------------------------------------------------------------


@pytest.fixture
def base() -> dict:
    """A valid rubric set as plain data (PARIKSHA), to break one thing at a time."""
    return yaml.safe_load((SETS_DIR / "pariksha.yaml").read_text(encoding="utf-8"))


def write(tmp_path: Path, data, name="bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(rubrics.RubricError) as exc:
        rubrics.load_rubric_set(path)
    msg = str(exc.value)
    assert str(path) in msg, "the error names the file"
    return msg


def metric0(data: dict) -> dict:
    return data["families"][0]["metrics"][0]


def test_misspelt_key(tmp_path, base):
    m = metric0(base)
    m["descripton"] = m.pop("description")
    msg = load_error(write(tmp_path, base))
    assert "families[0].metrics[0].descripton: unknown key" in msg
    assert "families[0].metrics[0].description: Field required" in msg


def test_misspelt_top_level_key(tmp_path, base):
    base["familes"] = base.pop("families")
    msg = load_error(write(tmp_path, base))
    assert "familes: unknown key" in msg


def test_missing_required_key(tmp_path, base):
    del base["families"][0]["metrics"][1]["judge"]["question"]
    msg = load_error(write(tmp_path, base))
    assert "families[0].metrics[1].judge.question: Field required" in msg


def test_levels_not_ascending(tmp_path, base):
    levels = metric0(base)["human"]["levels"]
    levels[0], levels[1] = levels[1], levels[0]
    msg = load_error(write(tmp_path, base))
    assert "families[0].metrics[0].human.levels" in msg
    assert "unique and ascending" in msg and "[1, 0, 2]" in msg


def test_duplicate_level_values(tmp_path, base):
    metric0(base)["judge"]["scale"]["levels"][2]["value"] = 1
    msg = load_error(write(tmp_path, base))
    assert "families[0].metrics[0].judge.scale.levels" in msg and "unique and ascending" in msg


def test_to_human_incomplete(tmp_path, base):
    del metric0(base)["judge"]["to_human"][2]
    msg = load_error(write(tmp_path, base))
    assert "families[0].metrics[0]" in msg
    assert "judge.to_human must map exactly the judge levels [0, 1, 2]" in msg


def test_to_human_onto_non_human_level(tmp_path, base):
    metric0(base)["judge"]["to_human"][2] = 3
    msg = load_error(write(tmp_path, base))
    assert "judge.to_human maps onto [3], which are not human levels [0, 1, 2]" in msg


def test_to_human_not_monotone_for_ordinal(tmp_path, base):
    metric0(base)["judge"]["to_human"] = {0: 0, 1: 2, 2: 1}
    msg = load_error(write(tmp_path, base))
    assert "families[0].metrics[0]" in msg and "monotone" in msg


def test_non_monotone_mapping_allowed_for_nominal(tmp_path, base):
    m = metric0(base)
    m["measurement"] = "nominal"
    m["judge"]["to_human"] = {0: 0, 1: 2, 2: 1}
    rs = rubrics.load_rubric_set(write(tmp_path, base, "ok.yaml"))
    assert rs.families[0].metrics[0].judge.to_human == {0: 0, 1: 2, 2: 1}


def test_duplicate_metric_names(tmp_path, base):
    base["families"][0]["metrics"][2]["name"] = "task_quality"
    msg = load_error(write(tmp_path, base))
    assert "families[0].metrics" in msg and "duplicate metric names ['task_quality']" in msg


def test_duplicate_family_names(tmp_path, base):
    base["families"].append(copy.deepcopy(base["families"][0]))
    msg = load_error(write(tmp_path, base))
    assert "duplicate family names ['general']" in msg


def test_bad_identifier(tmp_path, base):
    metric0(base)["name"] = "Linguistic Acceptability"
    msg = load_error(write(tmp_path, base))
    assert "families[0].metrics[0].name" in msg


def test_invalid_yaml(tmp_path):
    msg = load_error(write(tmp_path, "name: x\nfamilies: [unclosed\n"))
    assert "not valid YAML" in msg


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("", "NoneType"), ("just text\n", "str")])
def test_top_level_not_a_mapping(tmp_path, text, kind):
    msg = load_error(write(tmp_path, text))
    assert f"expected a mapping at the top level, got {kind}" in msg


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert "cannot read as UTF-8" in load_error(path)


def test_missing_file(tmp_path):
    assert "rubric file not found" in load_error(tmp_path / "nope.yaml")


def test_unknown_builtin_name():
    with pytest.raises(rubrics.RubricError, match=r"unknown rubric set 'updeshh'.*\['pariksha', 'updesh'\]"):
        rubrics.load_rubric_set("updeshh")


def test_builtin_name_not_shadowed_by_a_directory(tmp_path, monkeypatch):
    (tmp_path / "updesh").mkdir()
    monkeypatch.chdir(tmp_path)
    assert rubrics.load_rubric_set("updesh").name == "updesh"


# --- CLI --------------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("COLUMNS", None)  # messages must not be wrapped at the non-terminal default width
    return subprocess.run(
        [sys.executable, "-m", "kasauti", "rubrics", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )


def test_cli_list():
    r = cli("list")
    assert r.returncode == 0, r.stderr
    assert "pariksha" in r.stdout and "updesh" in r.stdout and "25 metrics" in r.stdout


def test_cli_show_guidelines():
    r = cli("show", "updesh")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == rubrics.render_guidelines(rubrics.load_rubric_set("updesh")).strip()


def test_cli_show_judge_prompt():
    r = cli("show", "updesh", "--judge-prompt")
    assert r.returncode == 0, r.stderr
    for fam, names in UPDESH_FAMILIES.items():
        assert f"--- {fam}: system ---" in r.stdout and f"--- {fam}: user ---" in r.stdout
        for name in names:
            assert f"### {name}:" in r.stdout


def test_cli_validate(tmp_path, base):
    good = cli("validate", str(SETS_DIR / "pariksha.yaml"), str(SETS_DIR / "updesh.yaml"))
    assert good.returncode == 0, good.stderr
    assert "pariksha v1.0, 3 metrics" in good.stdout and "updesh v1.0, 25 metrics" in good.stdout

    m = metric0(base)
    m["descripton"] = m.pop("description")
    # a long path with brackets: printed whole, neither wrapped nor read as console markup
    folder = tmp_path / "[abc]" / ("rubrics_under_review_" * 3)
    folder.mkdir(parents=True)
    bad_path = write(folder, base, "pariksha_with_a_misspelt_key.yaml")
    bad = cli("validate", str(SETS_DIR / "updesh.yaml"), str(bad_path))
    assert bad.returncode == 2
    assert str(bad_path) in bad.stderr
    assert "families[0].metrics[0].descripton: unknown key" in bad.stderr


def test_cli_show_unknown_set():
    r = cli("show", "nosuchset")
    assert r.returncode == 2
    assert "unknown rubric set 'nosuchset'" in r.stderr


# --- one scale per metric name, aliases, import-only rubrics ---------------------------------


def test_metric_with_different_scales_in_two_families(tmp_path, base):
    other = copy.deepcopy(base["families"][0])
    other.update(name="other", tasks=["other*"])
    other["metrics"] = [copy.deepcopy(metric0(base))]
    other["metrics"][0]["human"]["levels"].append({"value": 3, "label": "Perfect", "anchor": "Could not be better."})
    base["families"].append(other)
    path = write(tmp_path, base)
    msg = load_error(path)
    assert "'linguistic_acceptability'" in msg and "'general'" in msg and "'other'" in msg and "human scale" in msg
    res = cli("validate", str(path))
    assert res.returncode == 2 and "human scale" in res.stderr and "Traceback" not in res.stderr


def test_same_metric_in_two_families_with_one_scale_is_fine(tmp_path, base):
    other = copy.deepcopy(base["families"][0])
    other.update(name="other", tasks=["other*"])
    base["families"].append(other)
    assert rubrics.load_rubric_set(write(tmp_path, base, "ok.yaml")).metric_names == ["linguistic_acceptability", "task_quality", "hallucination"]


def test_display_name_aliases(tmp_path, base):
    metric0(base)["aliases"] = ["Linguistic Acceptability", "5W1H"]
    rs = rubrics.load_rubric_set(write(tmp_path, base, "ok.yaml"))
    assert rs.aliases == {"Linguistic Acceptability": "linguistic_acceptability", "5W1H": "linguistic_acceptability"}
    base["families"][0]["metrics"][1]["aliases"] = ["5W1H"]
    assert "alias '5W1H'" in load_error(write(tmp_path, base))
    base["families"][0]["metrics"][1]["aliases"] = ["hallucination"]
    assert "alias 'hallucination'" in load_error(write(tmp_path, base))


def import_only(base: dict) -> dict:
    for m in base["families"][0]["metrics"]:
        del m["judge"]
    return base


def test_import_only_rubric_has_no_judge_section(tmp_path, base):
    path = write(tmp_path, import_only(base), "import_only.yaml")
    rs = rubrics.load_rubric_set(path, require_judge=False)
    assert all(m.judge is None for m in rs.families[0].metrics)
    msg = load_error(path)  # judging needs the judge part
    assert "no judge section" in msg and "linguistic_acceptability" in msg
    res = cli("validate", str(path))
    assert res.returncode == 0, res.stderr
    assert "import only" in res.stdout
    res = cli("show", str(path))
    assert res.returncode == 0 and "Linguistic acceptability" in res.stdout
    res = cli("show", str(path), "--judge-prompt")
    assert res.returncode == 2 and "no judge section" in res.stderr and "Traceback" not in res.stderr


def test_readme_custom_rubric_example(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("A custom rubric"):]
    block = block[block.index("```yaml\n") + 8:]
    path = write(tmp_path, block[:block.index("```")], "basse.yaml")
    res = cli("validate", str(path))
    assert res.returncode == 0 and "import only" in res.stdout, res.stderr
    rs = rubrics.load_rubric_set(path, require_judge=False)
    assert rs.aliases == {"Coherence": "coherence", "5W1H": "five_w_one_h"}
    # ratings that name the metrics as displayed import with no judge part and no renaming
    ratings = tmp_path / "basse.csv"
    rows = ["item_id,metric,rater,rater_kind,score,language,task"]
    rows += [f"d{i},{m},{r},human,{1 + (i + k) % 3},es,summary" for i in range(12) for m in ("Coherence", "5W1H") for k, r in enumerate("ab")]
    ratings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "kasauti", "report", "--ratings", str(ratings), "--rubric", str(path),
                          "--out", str(tmp_path / "rep"), "--n-boot", "0"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert doc["import"]["counts"]["ratings used"] == len(rows) - 1
    assert {c["metric"] for c in doc["cells"]} == {"coherence", "five_w_one_h"}
