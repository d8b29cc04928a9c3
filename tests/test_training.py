"""training/: MIDB revision pairs, edit distance and selection, booster examples, the booster trainer.

The trainer tests run a tiny random-init Llama with a byte-level BPE tokenizer trained here on
multilingual text (Devanagari and Tamil included), built once per session, on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.midb import EMPTY_REVISED_RESPONSE, UNCHANGED, MidbError, read_midb
from training.pairs import RevisionPair, Triple, edit_distance, select_top


def midb_record(raw: tuple[str, str, str], revised: tuple[str, str, str], distance: int = 100) -> dict:
    keys = ("Instruction", "Input", "Response")
    rec = {f"Raw {k}": v for k, v in zip(keys, raw)}
    rec.update({f"Revised {k}": v for k, v in zip(keys, revised)})
    rec["Distance"] = distance
    return rec


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


# --- MIDB reader ---------------------------------------------------------------------------


def test_midb_reads_pairs_and_sets_aside_what_cannot_teach(tmp_path):
    same = ("Resume el texto.", "Hola mundo", "Hola.")
    path = write_json(tmp_path / "Spanish.json", [
        midb_record(("Traduce", "", "Helo"), ("Traduce al inglés", "", "Hello")),
        midb_record(same, same, distance=206),  # MIDB's Distance says edited; nothing changed
        midb_record(("Resume", "texto", "Un resumen"), ("Resume", "texto", "")),
        midb_record(("Lista tres frutas", "", "manzana"), ("Lista tres frutas", "", "manzana, pera, uva")),
    ])
    got = read_midb(path)
    assert got.language == "es"
    assert got.records == 4
    assert [p.item_id for p in got.pairs] == ["midb/es/1", "midb/es/4"]
    assert got.set_aside == {UNCHANGED: [2], EMPTY_REVISED_RESPONSE: [3]}
    assert got.records == len(got.pairs) + sum(len(v) for v in got.set_aside.values())
    first = got.pairs[0]
    assert first.original == Triple("Traduce", "", "Helo")
    assert first.revised == Triple("Traduce al inglés", "", "Hello")
    assert 0 < first.distance < 1  # computed from the texts, not MIDB's 100


@pytest.mark.parametrize(
    "content, expected",
    [
        ("[{", ["not valid JSON"]),
        ('{"Raw Instruction": "x"}', ["expected a JSON list", "dict"]),
        ([midb_record(("a", "", "b"), ("a", "", "c")), "text"], ["record 2", "expected an object"]),
        ([{k: v for k, v in midb_record(("a", "", "b"), ("a", "", "c")).items() if k != "Revised Response"}],
         ["record 1", "missing key 'Revised Response'"]),
        ([midb_record(("a", "", "b"), ("a", "", "c")), {**midb_record(("a", "", "b"), ("a", "", "c")), "Raw Input": 3}],
         ["record 2", "key 'Raw Input'", "expected text, got int"]),
        ([{**midb_record(("a", "", "b"), ("a", "", "c")), "Revised Respons": "c"}], ["record 1", "unknown key 'Revised Respons'"]),
    ],
)
def test_midb_malformed_file_is_one_line_naming_file_record_and_key(tmp_path, content, expected):
    path = tmp_path / "Japanese.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    with pytest.raises(MidbError) as err:
        read_midb(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg
    for part in expected:
        assert part in msg


def test_midb_language_comes_from_the_file_name_or_is_asked_for(tmp_path):
    path = write_json(tmp_path / "pairs.json", [midb_record(("a", "", "b"), ("a", "", "c"))])
    with pytest.raises(MidbError, match="cannot tell the language"):
        read_midb(path)
    assert read_midb(path, language="Tamil").pairs[0].language == "ta"
    with pytest.raises(MidbError, match="file not found"):
        read_midb(tmp_path / "Arabic.json")


# --- edit distance and selection -----------------------------------------------------------


def test_edit_distance_is_normalised_levenshtein_over_the_whole_triple():
    a = Triple("abcd", "", "wxyz")
    assert edit_distance(a, a) == 0
    # one substituted character in the instruction counts, over the joined length (4 + 1 + 0 + 1 + 4)
    assert edit_distance(a, Triple("abcX", "", "wxyz")) == pytest.approx(1 / 10)
    # moving text from the input into the response is an edit even though the concatenation is equal
    assert edit_distance(Triple("i", "ab", "c"), Triple("i", "a", "bc")) > 0
    assert edit_distance(Triple("ab", "", ""), Triple("cd", "", "")) == pytest.approx(2 / 4)


def pair(item_id: str, language: str, revised_response: str) -> RevisionPair:
    return RevisionPair(item_id, language, Triple("i", "", "0123456789"), Triple("i", "", revised_response))


def test_select_top_keeps_the_most_edited_share_per_language_independent_of_order():
    pairs = [
        pair("hi-1", "hi", "0123456789"),  # unchanged: never selected
        pair("hi-2", "hi", "012345678X"),
        pair("hi-3", "hi", "0123XXXXXX"),
        pair("hi-4", "hi", "01234567XX"),
        pair("ta-1", "ta", "XXXXXXXXXX"),
        pair("ta-2", "ta", "0XXXXXXXXX"),
        pair("ta-3", "ta", "0XXXXXXXXX"),  # ties with ta-2: broken by item id
    ]
    top = select_top(pairs, 0.5)
    assert [p.item_id for p in top] == ["hi-3", "hi-4", "ta-1", "ta-2"]
    assert [p.item_id for p in select_top(reversed(pairs), 0.5)] == [p.item_id for p in top]
    assert [p.item_id for p in select_top(pairs, 1.0)] == ["hi-3", "hi-4", "hi-2", "ta-1", "ta-2", "ta-3"]
    assert [p.item_id for p in select_top(pairs, 0.01)] == ["hi-3", "ta-1"]
    with pytest.raises(ValueError, match="top share"):
        select_top(pairs, 0)
