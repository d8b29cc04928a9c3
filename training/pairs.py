"""Revision pairs (original item -> revised item), their edit distance and top-share selection.

The edit distance is always computed here, never taken from an input column: the normalised
Levenshtein distance (rapidfuzz) between the two whole triples, each joined as
instruction / input / response with a separator that cannot occur in text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

_SEP = "\x1f"  # unit separator: keeps an edit from moving text across fields unnoticed


@dataclass(frozen=True)
class Triple:
    """One instruction item: instruction, optional input, response."""

    instruction: str
    input: str
    response: str

    def joined(self) -> str:
        return _SEP.join((self.instruction, self.input, self.response))


@dataclass(frozen=True)
class RevisionPair:
    """An original item and its revision; `distance` is computed from the two triples."""

    item_id: str
    language: str
    original: Triple
    revised: Triple
    distance: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "distance", edit_distance(self.original, self.revised))


def edit_distance(a: Triple, b: Triple) -> float:
    """Levenshtein distance between the whole triples over the longer one's length: 0 (same) .. 1."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.normalized_distance(a.joined(), b.joined())


def select_top(pairs: Iterable[RevisionPair], share: float) -> list[RevisionPair]:
    """The `share` (0 < share <= 1) most-edited pairs of each language, most edited first.

    Per language, ``round(share * n)`` pairs (at least one) are kept; ties on distance are broken
    by item id, so the selection does not depend on input order. Pairs whose revision changes
    nothing are never selected.
    """
    if not 0 < share <= 1:
        raise ValueError(f"top share must be in (0, 1], got {share}")
    by_language: dict[str, list[RevisionPair]] = {}
    for p in pairs:
        by_language.setdefault(p.language, []).append(p)
    out: list[RevisionPair] = []
    for language in sorted(by_language):
        ranked = sorted(by_language[language], key=lambda p: (-p.distance, p.item_id))
        keep = max(1, int(share * len(ranked) + 0.5))
        out.extend(p for p in ranked[:keep] if p.distance > 0)
    return out
