"""Bad input to the annotation stage: clear errors naming file, row, column or key; no server needed."""

from __future__ import annotations

import pandas as pd
import pytest

import rubrics
from annotator.people import RosterError, load_roster
from annotator.push import PushError, check_sample, read_sample, record_payload
from annotator.records import RecordMap, RecordMapError
from tests.annotator_data import make_sample

RS = rubrics.load_rubric_set("pariksha")


def test_sample_errors_name_row_and_column():
    sample = make_sample(per_language=2)
    with pytest.raises(PushError, match=r"missing column\(s\) \['response'\]"):
        check_sample(sample.drop(columns=["response"]), "s.parquet")
    blank = sample.copy()
    blank.loc[3, "response"] = "  "
    with pytest.raises(PushError, match=r"s.parquet: row 4, column 'response': expected a non-empty string"):
        check_sample(blank, "s.parquet")  # rows are 1-based
    dup = sample.copy()
    dup.loc[4, "item_id"] = dup.loc[1, "item_id"]
    with pytest.raises(PushError, match=r"row 5, column 'item_id': expected a unique id"):
        check_sample(dup, "s.parquet")


@pytest.mark.parametrize("value", ["x", 0, 2.5])
def test_bad_length_bin_names_row_and_column(value):
    sample = make_sample(per_language=2)
    sample["length_bin"] = sample["length_bin"].astype(object)
    sample.loc[2, "length_bin"] = value
    with pytest.raises(PushError, match=rf"s.parquet: row 3, column 'length_bin': expected a length bin \(an integer >= 1\), "
                                        rf"got {value!r} \(1 such row"):
        check_sample(sample, "s.parquet")


@pytest.mark.parametrize("content", [b"", b"PAR1 not really parquet \x00\x17 random bytes", "truncated"])
def test_unreadable_sample_is_one_clear_error(tmp_path, content):
    path = tmp_path / "sample.parquet"
    if content == "truncated":
        make_sample(per_language=2).to_parquet(path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(PushError, match=rf"^{path}: not a Parquet file \(truncated\?\): .*; write it again \(`kasauti sample` writes it\)") as exc:
        read_sample(path)
    assert "\n" not in str(exc.value)


def test_roster_errors_name_entry_and_key(tmp_path):
    path = tmp_path / "roster.yaml"
    path.write_text("annotators:\n  - {username: asha, name: Asha, languages: [hi]}\n  - {username: Bad Name, name: B, languages: []}\n")
    with pytest.raises(RosterError) as exc:
        load_roster(path)
    msg = str(exc.value)
    assert str(path) in msg and "annotators[1].username" in msg and "annotators[1].languages" in msg
    path.write_text("annotators:\n  - {username: asha, name: A, languages: [HI, hi]}\n  - {username: asha, name: B, languages: [ta]}\n")
    with pytest.raises(RosterError, match="duplicate usernames"):
        load_roster(path)
    path.write_text("annotators:\n  - {username: asha, name: A, languages: [HI, hi, ' ta']}\n")
    assert load_roster(path).annotators[0].languages == ["hi", "ta"]


def test_roster_languages_are_normalised_like_the_data(tmp_path):
    path = tmp_path / "roster.yaml"
    path.write_text("annotators:\n  - {username: asha, name: A, languages: [Bengali, ben, Tamil, oriya]}\n")
    assert load_roster(path).annotators[0].languages == ["bn", "ta", "or"]
    path.write_text("annotators:\n  - {username: asha, name: A, languages: [hi]}\n  - {username: ravi, name: R, languages: [bn, xx]}\n")
    with pytest.raises(RosterError, match=r"annotators\[1\]\.languages: .*'xx' is not a language name or ISO 639 code"):
        load_roster(path)


def test_payload_refuses_a_field_the_form_lacks():
    item = make_sample(per_language=1).iloc[-3].to_dict()  # the Hindi row with a conversation
    assert record_payload(item, ["conversation"], "r1")["fields"]["conversation"].startswith("**User:**")
    with pytest.raises(PushError, match="has a 'conversation' but its dataset was created without that field"):
        record_payload(item, [], "r1")
    assert pd.isna(item["system_prompt"])


def test_payload_carries_nothing_an_annotator_must_not_see():
    """PARIKSHA item ids are `<uuid>|<model>`: neither the id nor stratum, length bin or model is sent."""
    for item in make_sample(per_language=2).to_dict("records"):
        payload = record_payload(item, ["system_prompt", "conversation", "context"], "0123abcd")
        assert payload["external_id"] == "0123abcd" and payload["metadata"] == {
            "language": item["language"], "task": item["task"]}
        sent = repr(payload)
        assert item["item_id"] not in sent and item["source_model"] not in sent and item["stratum"] not in sent


def test_record_map_is_stable_and_refuses_a_damaged_file(tmp_path):
    path = tmp_path / "records.parquet"
    items = make_sample(per_language=2)["item_id"].tolist()
    first = RecordMap(path)
    ids = first.assign(items)
    assert len(set(ids)) == len(items) and all(len(i) == 32 and set(i) <= set("0123456789abcdef") for i in ids)
    first.save()
    again = RecordMap(path)
    assert again.assign(reversed(items)) == ids[::-1] and [again.item_of(i) for i in ids] == items
    path.write_bytes(b"not parquet")
    with pytest.raises(RecordMapError, match=rf"^{path}: not a readable record map .*restore it from a backup"):
        RecordMap(path)
