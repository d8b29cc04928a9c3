"""sampling.pairs: pairs of responses to the same prompt by two source models (pairs.parquet)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import studytables
from sampling.pairs import boosted_pairs, make_pairs, pair_items, write_pairs
from sampling.pariksha import flatten_responses
from studytables import BOOSTED, PAIRS, SAMPLE

DEMO = Path(__file__).resolve().parents[1] / "kasauti" / "demo_data" / "pariksha"


def sample(models_per_prompt: dict[str, list[str]], language: str = "hi") -> pd.DataFrame:
    """A sample.parquet-shaped frame: one response per (prompt text, model); ids `<prompt>|<model>`."""
    rows = [{"item_id": f"{p}|{m}", "language": language, "task": "t", "prompt": f"prompt {p}", "response": f"{m} on {p}",
             "source_model": m, "conversation": None, "system_prompt": None, "context": None, "length": 10, "stratum": f"{language}/t", "length_bin": 1, "source_row": i}
            for i, (p, ms) in enumerate((p, ms) for p, ms in models_per_prompt.items()) for m in ms]
    return studytables.conform(SAMPLE, pd.DataFrame(rows))


def uses(pairs: pd.DataFrame) -> Counter:
    return Counter(pairs["model_a"]) + Counter(pairs["model_b"])


def test_all_design_pairs_every_two_models_of_each_prompt_only():
    s = sample({"p1": ["m1", "m2", "m3"], "p2": ["m1", "m3"], "p3": ["m2"]})
    pairs = make_pairs(s, "all", seed=1)
    got = {(p, a, b) for p, a, b in zip(pairs["prompt_id"], pairs["item_a"], pairs["item_b"])}
    assert len(got) == len(pairs) == 3 + 1
    assert {(a, b) for _, a, b in got} == {("p1|m1", "p1|m2"), ("p1|m1", "p1|m3"), ("p1|m2", "p1|m3"), ("p2|m1", "p2|m3")}
    assert (pairs["model_a"] < pairs["model_b"]).all()
    assert pairs.groupby("prompt_id")["item_a"].apply(lambda x: {i.split("|")[0] for i in x}).map(len).eq(1).all()
    assert pairs["pair_id"].is_unique and pairs["repeat_of"].isna().all()
    assert pairs.attrs["counts"] == {"items": 6, "items_without_source_model": 0, "prompts": 3, "items_alone": 1,
                                     "candidate_pairs": 4, "pairs": 4, "repeats": 0}
    assert studytables.conform(PAIRS, pairs).shape == pairs.shape


def test_shown_order_is_seeded_random_per_pair():
    s = sample({f"p{i}": ["m1", "m2", "m3", "m4"] for i in range(50)})
    one, again, other = make_pairs(s, seed=3), make_pairs(s, seed=3), make_pairs(s, seed=4)
    pd.testing.assert_frame_equal(one, again)
    assert 0.35 < (one["shown_order"] == "ab").mean() < 0.65
    assert (one["shown_order"] != other["shown_order"]).any()
    assert (one["pair_id"] == other["pair_id"]).all()  # ids depend on the items, not on the seed


def test_same_prompt_text_in_two_languages_is_two_prompts():
    s = pd.concat([sample({"p": ["m1", "m2"]}, "hi"),
                   sample({"p": ["m1", "m2"]}, "bn").assign(item_id=lambda f: "bn" + f["item_id"])], ignore_index=True)
    pairs = make_pairs(s)
    assert len(pairs) == 2 and pairs["prompt_id"].nunique() == 2
    assert set(pairs["language"]) == {"hi", "bn"}


def test_a_prompt_id_column_is_the_prompt_identity_when_the_sample_has_one():
    s = sample({"p1": ["m1", "m2"], "p2": ["m1", "m2"]})
    s["prompt"] = [f"text {i}" for i in range(len(s))]  # e.g. whitespace variants of one prompt: texts differ
    s["prompt_id"] = ["q1", "q1", "q2", "q2"]
    pairs = make_pairs(s)
    assert list(pairs["prompt_id"]) == ["q1", "q2"] and len(pairs) == 2
    with pytest.raises(ValueError, match=r"row 2, column 'prompt_id': empty"):
        make_pairs(s.assign(prompt_id=["q1", None, "q2", "q2"]))


def test_no_prompt_with_two_models_is_an_empty_table_with_its_counts(tmp_path):
    pairs = make_pairs(sample({"p1": ["m1"], "p2": ["m2"]}), repeat_share=0.5)
    assert pairs.empty and list(pairs.columns) == PAIRS.names
    assert pairs.attrs["counts"]["items_alone"] == 2 and pairs.attrs["counts"]["pairs"] == 0


def test_balanced_design_uses_each_model_about_equally_often():
    # models are unequally available: m1..m3 answer every prompt, m4 and m5 half of them, m6 two in three
    prompts = {f"p{i}": ["m1", "m2", "m3", "m4" if i % 2 else "m5"] + ["m6"] * (i % 3 > 0) for i in range(60)}
    s = sample(prompts)
    pairs = make_pairs(s, "balanced", seed=0, n_per_prompt=2)
    assert len(pairs) == 2 * 60
    assert pairs.duplicated(["item_a", "item_b"]).sum() == 0
    count = uses(pairs)
    assert set(count) == {f"m{i}" for i in range(1, 7)}
    assert max(count.values()) - min(count.values()) <= 2, count
    every = make_pairs(s, "all")
    all_count = uses(every)
    assert max(all_count.values()) - min(all_count.values()) > 20  # the every-pair design is far from balanced here
    model_pairs = Counter(zip(pairs["model_a"], pairs["model_b"]))
    assert set(model_pairs) == set(zip(every["model_a"], every["model_b"]))  # every pair of models that can meet does


def test_balanced_default_is_about_one_appearance_per_model_and_prompt():
    s = sample({f"p{i}": ["m1", "m2", "m3", "m4", "m5"] for i in range(10)})
    pairs = make_pairs(s, "balanced", seed=2)
    assert len(pairs) == 10 * 2
    assert max(uses(pairs).values()) - min(uses(pairs).values()) <= 1


def test_repeats_are_swapped_copies_of_chosen_pairs():
    s = sample({f"p{i}": ["m1", "m2", "m3"] for i in range(20)})
    pairs = make_pairs(s, "all", seed=5, repeat_share=0.1)
    rep = pairs[pairs["repeat_of"].notna()]
    assert len(rep) == 6 and pairs.attrs["counts"]["repeats"] == 6 and pairs["pair_id"].is_unique
    orig = pairs.set_index("pair_id").loc[rep["repeat_of"]]
    for col in ("prompt_id", "item_a", "item_b", "model_a", "model_b"):
        assert (orig[col].to_numpy() == rep[col].to_numpy()).all()
    assert (orig["shown_order"].to_numpy() != rep["shown_order"].to_numpy()).all()
    assert orig["repeat_of"].isna().all()


def test_pariksha_shaped_items_pair_within_their_prompt_uuid():
    resp = flatten_responses(DEMO).rename(columns={"id": "item_id", "model": "source_model"})
    pairs = make_pairs(resp, "balanced", seed=0)
    uuid = lambda col: pairs[col].str.split("|").str[0]  # noqa: E731
    assert len(pairs) > 0 and (uuid("item_a") == uuid("item_b")).all()
    assert (pairs["item_a"].str.split("|").str[1] == pairs["model_a"]).all()
    n_prompts = resp["item_id"].str.split("|").str[0].nunique()
    assert pairs["prompt_id"].nunique() == pairs.attrs["counts"]["prompts"] == n_prompts


def test_missing_source_model_is_counted_and_double_answers_are_refused():
    s = sample({"p1": ["m1", "m2", "m3"]})
    s.loc[2, "source_model"] = None
    pairs = make_pairs(s)
    assert len(pairs) == 1 and pairs.attrs["counts"]["items_without_source_model"] == 1
    twice = pd.concat([s, s.iloc[[0]].assign(item_id="x")], ignore_index=True)
    with pytest.raises(ValueError, match=r"rows 1, 4, column 'source_model': 'm1' answers the same prompt more than once"):
        make_pairs(twice)
    with pytest.raises(ValueError, match="design 'best'"):
        make_pairs(s, "best")
    with pytest.raises(ValueError, match="only with design 'balanced'"):
        make_pairs(s, "all", n_per_prompt=2)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['source_model'\]"):
        make_pairs(s.drop(columns="source_model"))


def test_boosted_pairs_compare_two_versions_of_each_item():
    orig = sample({f"p{i}": ["m1"] for i in range(5)})
    boosted = orig.assign(response=orig["response"] + " (boosted)")
    boosted.loc[0, "response"] = orig.loc[0, "response"]  # unchanged: nothing to compare
    boosted.loc[1, "response"] = orig.loc[1, "response"]
    boosted.loc[1, "prompt"] = "a better instruction"  # only the instruction changed: still a new version
    boosted = pd.concat([boosted.drop(index=4), boosted.iloc[[4]].assign(item_id="new")], ignore_index=True)
    pairs = boosted_pairs(orig, boosted.assign(context=""), seed=0, repeat_share=0.5)  # "" = no input, as null
    first = pairs[pairs["repeat_of"].isna()]
    assert list(first["item_a"]) == list(first["item_b"]) == ["p1|m1", "p2|m1", "p3|m1"]
    assert set(pairs["model_a"]) == {"original"} and set(pairs["model_b"]) == {"boosted"}
    assert pairs.attrs["counts"] == {"original_items": 5, "boosted_items": 5, "only_original": 1, "only_boosted": 1,
                                     "unchanged": 1, "pairs": 3, "repeats": 2}


def test_write_pairs_writes_the_documented_file(tmp_path):
    studytables.write(SAMPLE, sample({f"p{i}": ["m1", "m2", "m3"] for i in range(4)}), tmp_path / "sample.parquet")
    path, counts = write_pairs(tmp_path, "balanced", seed=0, n_per_prompt=1, repeat_share=0.5)
    assert path == tmp_path / "pairs.parquet"
    back = studytables.read(PAIRS, path)
    assert list(back.columns) == PAIRS.names and len(back) == counts["pairs"] + counts["repeats"] == 6


def test_pairs_from_the_demo_study_sample_written_by_kasauti_sample(tmp_path):
    import subprocess
    import sys

    from kasauti.demo import demo_study

    study = demo_study(tmp_path / "demo")
    run = subprocess.run([sys.executable, "-m", "kasauti", "sample", str(study.root)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    path, counts = write_pairs(study.root, "all", seed=0)
    pairs = studytables.read(PAIRS, path)
    sample_df = studytables.read(SAMPLE, study.root / "sample.parquet")
    uuid = sample_df["item_id"].str.split("|").str[0]  # PARIKSHA ids: <prompt uuid>|<model>
    per_prompt = uuid.value_counts()
    assert counts["prompts"] == len(per_prompt) and counts["items_alone"] == int((per_prompt == 1).sum())
    assert len(pairs) == int((per_prompt * (per_prompt - 1) // 2).sum())
    assert (pairs["item_a"].str.split("|").str[0] == pairs["item_b"].str.split("|").str[0]).all()


def boosted_of(orig: pd.DataFrame) -> pd.DataFrame:
    """boosted.parquet rows for `orig`: the first item's response rewritten, the second's instruction and input too."""
    rows = [{"item_id": r.item_id, "language": r.language, "task": r.task, "prompt": r.prompt, "context": "",
             "response": r.response, "original_prompt": r.prompt, "original_context": "", "original_response": r.response,
             "edit_distance": 0.0, "source_model": r.source_model, "booster": "b" * 64, "params": "{}"}
            for r in orig.itertuples()]
    rows[0]["response"] = "a better answer"
    rows[1].update(prompt="a clearer instruction", context="some input", response="its answer")
    return studytables.conform(BOOSTED, pd.DataFrame(rows))


def test_pair_items_show_the_original_from_the_sample_and_the_boosted_version_from_boosted_parquet():
    orig = sample({f"p{i}": ["m1"] for i in range(3)})
    versions = boosted_of(orig)
    pairs = boosted_pairs(orig, versions)
    assert list(pairs["item_a"]) == ["p0|m1", "p1|m1"]  # p2 unchanged: not paired
    (a0, b0), (a1, b1) = pair_items(pairs, orig, versions)
    # only the response changed: the original prompt and the two responses, lengths of the texts shown
    assert (a0["prompt"], a0["response"], b0["prompt"], b0["response"]) == ("prompt p0", "m1 on p0", "prompt p0", "a better answer")
    assert (a0["length"], b0["length"]) == (len("m1 on p0"), len("a better answer"))
    # the instruction and input changed too: each side shows its whole item, under the original prompt
    assert b1["prompt"] == a1["prompt"] == "prompt p1" and pd.isna(b1["context"])  # the original's (none)
    assert a1["response"] == "## Instruction\nprompt p1\n\n## Response\nm1 on p1"
    assert b1["response"] == "## Instruction\na clearer instruction\n\n## Input\nsome input\n\n## Response\nits answer"
    assert b1["length"] == len(b1["response"])
    # two source models' responses come from the sample, untouched
    two = sample({"q": ["m1", "m2"]})
    [(x, y)] = pair_items(make_pairs(two), two)
    assert (x["response"], y["response"], x["length"]) == ("m1 on q", "m2 on q", 10)


def test_pair_items_name_a_version_without_its_boosted_row():
    orig = sample({f"p{i}": ["m1"] for i in range(3)})
    versions = boosted_of(orig)
    pairs = boosted_pairs(orig, versions)
    with pytest.raises(ValueError, match=r"^pairs.parquet: row 1, column 'item_b': expected an item_id of boosted.parquet "
                                         r".*got 'p0\|m1' \(2 such row\(s\)\); boost the sample first"):
        pair_items(pairs, orig, None)
    with pytest.raises(ValueError, match=r"row 2, column 'item_b': expected an item_id of boosted.parquet .*\(1 such row"):
        pair_items(pairs, orig, versions.iloc[[0]])
    with pytest.raises(ValueError, match=r"^pairs.parquet: row 2, column 'item_a': expected an item_id of sample.parquet"):
        pair_items(pairs, orig.iloc[[0]], versions)


def test_write_pairs_boosted_pairs_each_item_with_its_boosted_version(tmp_path):
    orig = sample({f"p{i}": ["m1"] for i in range(3)})
    studytables.write(SAMPLE, orig, tmp_path / "sample.parquet")
    with pytest.raises(ValueError, match=r"boosted.parquet: not found; boost the sample first \(`kasauti boost`\)"):
        write_pairs(tmp_path, boosted=True)
    studytables.write(BOOSTED, boosted_of(orig), tmp_path / "boosted.parquet")
    with pytest.raises(ValueError, match="do not apply"):
        write_pairs(tmp_path, "balanced", boosted=True)
    path, counts = write_pairs(tmp_path, seed=2, repeat_share=0.5, boosted=True)
    back = studytables.read(PAIRS, path)
    assert counts["pairs"] == 2 and counts["unchanged"] == 1 and len(back) == 3
    assert (back["item_a"] == back["item_b"]).all() and set(back["model_b"]) == {"boosted"}
