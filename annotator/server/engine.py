"""kasauti's search engine for argilla-server 2.8: no Elasticsearch, no OpenSearch.

Runs INSIDE the argilla-server virtualenv (imports only argilla_server and the standard library).
Registered as ``SearchEngine.register(engine_name="kasauti")``; selected with
``ARGILLA_SEARCH_ENGINE=kasauti``.

The SQL database stays the source of truth. The index is a process-wide in-memory store of one
document per record (what the Elasticsearch engine indexes: status, text fields, metadata,
responses, suggestions, vectors, timestamps), rebuilt from the database at start-up
(:func:`rebuild_from_db`), so a server killed with ``kill -9`` comes back with identical results.
Every ordering is derived from database values only (``inserted_at`` then record id; a per-user
hash for the annotator queue), never from the order in which documents were indexed.

Semantics follow argilla's Elasticsearch engine (``search_engine/commons.py``):

- filters: terms / range on record properties, metadata, suggestions and response values; response
  status with ``pending`` meaning "no response (of that user)"; ``and`` of filters;
- sort: any of those scopes, several keys, missing values last, response values averaged;
- text: ``simple_query_string`` with ``default_operator=AND``: words, ``"phrases"``, ``prefix*``,
  ``-negation``, ``a | b``, parentheses. Words are Unicode words *including combining marks*
  (Python's ``\\w`` drops the vowel signs of Indic scripts), NFC-normalised, case-folded, with
  zero-width (non-)joiners removed, so a query typed either way matches;
- vectors: exact cosine similarity, ES score ``(1 + cos) / 2``.
"""

from __future__ import annotations

import collections
import enum
import hashlib
import math
import re
import sys
import unicodedata
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union
from uuid import UUID

from argilla_server.enums import MetadataPropertyType, ResponseStatusFilter, SimilarityOrder, SortOrder
from argilla_server.models import (
    Dataset,
    MetadataProperty,
    Record,
    Response,
    Suggestion,
    User,
    Vector,
    VectorSettings,
)
from argilla_server.search_engine.base import (
    AndFilter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    MetadataMetrics,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)

ENGINE_NAME = "kasauti"

# ------------------------------------------------------------------------------------- text analysis


def _mark_ranges() -> str:
    """A regex character-class body of every combining mark (Mn, Mc, Me), as ranges."""
    marks = [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me")]
    ranges, start = [], marks[0]
    for prev, cur in zip(marks, marks[1:] + [None]):
        if cur != prev + 1:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}" if prev > start else re.escape(chr(start)))
            start = cur
    return "".join(ranges)


_MARKS = _mark_ranges()
_WORD = re.compile(rf"[\w{_MARKS}\u200c\u200d]+")



def normalize(text: str) -> str:
    """NFC, case-folded, zero-width (non-)joiners removed."""
    if not unicodedata.is_normalized("NFC", text):  # the check is much cheaper than normalising
        text = unicodedata.normalize("NFC", text)
    return text.casefold().replace("\u200c", "").replace("\u200d", "")


def tokenize(text: str) -> List[str]:
    """Unicode words with their combining marks (matras, viramas, nuktas) kept inside the word."""
    return _WORD.findall(normalize(text))


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # chat field: [{"role": ..., "content": ...}]
        return "\n".join(_field_text(m.get("content") if isinstance(m, dict) else m) for m in value)
    if isinstance(value, dict):
        return "\n".join(_field_text(v) for v in value.values())
    return str(value)


class _Text:
    """One text field: its tokens (for phrases and prefixes) and token counts (for words).

    Tokenised on first use (the first text query, or :func:`tokenize_all` after start-up), not when
    indexed: tokenising is most of the work of rebuilding the index.
    """

    __slots__ = ("_text", "_tokens", "_counts")

    def __init__(self, text: str):
        self._text, self._tokens, self._counts = text, None, None

    @property
    def tokens(self) -> List[str]:
        if self._tokens is None:
            self._tokens, self._text = tokenize(self._text), None
        return self._tokens

    @property
    def counts(self) -> collections.Counter:
        if self._counts is None:
            self._counts = collections.Counter(self.tokens)
        return self._counts

    def hits(self, kind: str, term: Tuple[str, ...]) -> int:
        if kind == "word":
            return self.counts.get(term[0], 0)
        if kind == "prefix":
            return sum(c for t, c in self.counts.items() if t.startswith(term[0]))
        n, toks = len(term), self.tokens  # phrase
        return sum(1 for i in range(len(toks) - n + 1) if tuple(toks[i : i + n]) == term)


# simple_query_string grammar: expr := and ('|' and)* ; and := unary+ ; unary := '-'? atom ;
# atom := '(' expr ')' | '"phrase"' | word['*']. A node scores a document (0 = no match).
_QTOKEN = re.compile(r'\s*(?:(\()|(\))|(\|)|"([^"]*)"|(\S+?)(?=[\s()|"]|$))')
_Scorer = Callable[[Dict[str, _Text]], float]


class _QueryParser:
    def __init__(self, q: str):
        self.items: List[Tuple[str, str]] = []
        for m in _QTOKEN.finditer(q):
            lp, rp, bar, phrase, word = m.groups()
            if lp or rp or bar:
                self.items.append(((lp or rp or bar), ""))
            elif phrase is not None:
                self.items.append(('"', phrase))
            elif word:
                self.items.append(("w", word))
        self.pos = 0

    def parse(self) -> _Scorer:
        node = self._expr()
        return node if node is not None else (lambda texts: 1.0)

    def _peek(self) -> Optional[str]:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def _expr(self) -> Optional[_Scorer]:
        alternatives = [self._and()]
        while self._peek() == "|":
            self.pos += 1
            alternatives.append(self._and())
        alternatives = [a for a in alternatives if a is not None]
        if len(alternatives) <= 1:
            return alternatives[0] if alternatives else None
        return lambda texts: sum(a(texts) for a in alternatives)

    def _and(self) -> Optional[_Scorer]:
        parts: List[Tuple[bool, _Scorer]] = []
        while self._peek() not in (None, "|", ")"):
            negated, node = self._unary()
            if node is not None:
                parts.append((negated, node))
        if not parts:
            return None

        def score(texts):
            total = 0.0
            for negated, node in parts:
                s = node(texts)
                if negated == (s > 0):
                    return 0.0
                total += 0.0 if negated else s
            return total or 1.0

        return score

    def _unary(self) -> Tuple[bool, Optional[_Scorer]]:
        kind, text = self.items[self.pos]
        negated = False
        if kind == "w" and text.startswith(("-", "+")) and len(text) > 1:
            negated, text = text[0] == "-", text[1:]
            self.items[self.pos] = (kind, text)
        elif kind == "w" and text in ("-", "+"):
            self.pos += 1
            if self._peek() is None:
                return False, None
            negated, (kind, text) = text == "-", self.items[self.pos]
        if kind == "(":
            self.pos += 1
            node = self._expr()
            if self._peek() == ")":
                self.pos += 1
            return negated, node
        self.pos += 1
        if kind == '"':
            return negated, _terms_scorer("phrase", tokenize(text))
        prefix = text.endswith("*")
        return negated, _terms_scorer("prefix" if prefix else "word", tokenize(text.rstrip("*")))


def _terms_scorer(kind: str, toks: List[str]) -> Optional[_Scorer]:
    """A word the analyzer splits in several tokens behaves as a phrase (as in ES)."""
    if not toks:
        return None
    if kind == "prefix" and len(toks) > 1:
        head, last = _terms_scorer("phrase", toks[:-1]), _terms_scorer("prefix", toks[-1:])
        return lambda texts: head(texts) and last(texts)
    if kind == "word" and len(toks) > 1:
        kind = "phrase"
    term = tuple(toks)

    def score(texts: Dict[str, _Text]) -> float:
        return math.log1p(sum(t.hits(kind, term) for t in texts.values()))

    return score


def parse_query(q: str) -> _Scorer:
    """Compile a ``simple_query_string`` query into a scorer over a document's text fields."""
    return _QueryParser(q).parse()


# ------------------------------------------------------------------------------------- values
def _plain(v: Any) -> Any:
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, UUID):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _as_list(v: Any) -> list:
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple, set)) else [v]


def _num(v: Any) -> Optional[float]:
    """Numbers, booleans, datetimes (epoch ms, naive = UTC as in argilla) and numeric/ISO strings."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).timestamp() * 1000
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            try:
                return _num(datetime.fromisoformat(v))
            except ValueError:
                return None
    return None


def _in_range(value: Any, ge: Any, le: Any) -> bool:
    a = _num(value)
    for bound, sign in ((ge, 1), (le, -1)):
        if bound is None:
            continue
        b = _num(bound)
        x, y = (a, b) if a is not None and b is not None else (str(value), str(bound))
        if (x > y) - (x < y) == -sign:
            return False
    return True


def _term_matcher(values: Iterable[Any]) -> Callable[[Any], bool]:
    wanted = {str(v) for v in values}
    numbers = {n for n in (_num(v) for v in values) if n is not None}
    lowered = {w.lower() for w in wanted}

    def match(v: Any) -> bool:
        if isinstance(v, bool):
            return str(v).lower() in lowered
        if str(v) in wanted:
            return True
        return isinstance(v, (int, float)) and float(v) in numbers

    return match


def _order_key(inserted_at: datetime, record_id: str) -> Tuple[float, str]:
    return (_num(inserted_at) or 0.0, record_id)


class _Doc:
    """What the index knows about one record."""

    __slots__ = ("id", "uuid", "dataset_id", "order", "record", "texts", "metadata", "responses", "suggestions",
                 "vectors")

    def __init__(self, dataset: Dataset, record: Record):
        self.id = str(record.id)
        self.uuid = record.id
        self.dataset_id = str(dataset.id)
        self.order = _order_key(record.inserted_at, self.id)
        self.record = {
            "id": self.id,
            "external_id": record.external_id,
            "status": _plain(record.status),
            "inserted_at": record.inserted_at,
            "updated_at": record.updated_at,
        }
        self.texts = {
            f.name: _Text(_field_text(record.fields.get(f.name))) for f in dataset.fields if not f.is_image
        }
        self.metadata = _plain(dict(record.metadata_ or {}))
        self.responses = {str(r.id): _response(r) for r in (getattr(record, "responses", None) or [])}
        self.suggestions = {s.question.name: _suggestion(s) for s in (getattr(record, "suggestions", None) or [])}
        self.vectors = {str(v.vector_settings_id): list(v.value) for v in (getattr(record, "vectors", None) or [])}

    def user_responses(self, user_id: Optional[str]) -> List[dict]:
        return [r for r in self.responses.values() if user_id is None or r["user_id"] == user_id]


def _response(response: Response) -> dict:
    return {
        "status": _plain(response.status),
        "user_id": str(response.user_id),
        "values": {q: _plain((v or {}).get("value")) for q, v in (response.values or {}).items()},
    }


def _suggestion(s: Suggestion) -> dict:
    return {"type": _plain(s.type), "agent": s.agent, "score": _plain(s.score), "value": _plain(s.value)}


class Index:
    """The process-wide store shared by every engine instance (argilla creates one per request)."""

    def __init__(self):
        self.datasets: Dict[str, Dict[str, _Doc]] = {}
        self.record_dataset: Dict[str, str] = {}
        self._ordered: Dict[str, List[_Doc]] = {}

    def docs(self, dataset_id: Any) -> Dict[str, _Doc]:
        return self.datasets.setdefault(str(dataset_id), {})

    def ordered(self, dataset_id: Any) -> List[_Doc]:
        """The dataset's documents by (inserted_at, id): cached until the next insert or delete."""
        key = str(dataset_id)
        if key not in self._ordered:
            self._ordered[key] = sorted(self.docs(key).values(), key=lambda d: d.order)
        return self._ordered[key]

    def put(self, doc: _Doc) -> None:
        # a re-indexed record is a new _Doc object: the cached order must not keep the old one
        self._ordered.pop(str(doc.dataset_id), None)
        docs = self.docs(doc.dataset_id)
        docs[doc.id] = doc
        self.record_dataset[doc.id] = doc.dataset_id

    def remove(self, dataset_id: Any, record_id: Any) -> None:
        self._ordered.pop(str(dataset_id), None)
        self.docs(dataset_id).pop(str(record_id), None)
        self.record_dataset.pop(str(record_id), None)

    def drop(self, dataset_id: Any) -> None:
        self._ordered.pop(str(dataset_id), None)
        for rid in self.datasets.pop(str(dataset_id), {}):
            self.record_dataset.pop(rid, None)

    def doc(self, record_id: Any, dataset_id: Any = None) -> Optional[_Doc]:
        ds = self.record_dataset.get(str(record_id)) or (str(dataset_id) if dataset_id else None)
        return self.datasets.get(ds, {}).get(str(record_id)) if ds else None

    def clear(self) -> None:
        self.__init__()


INDEX = Index()


# ------------------------------------------------------------------------------------- filters and sorting
def _scope_value(scope: Any) -> Callable[[_Doc], Any]:
    """The stored value (a scalar, a list or None) a filter or sort scope refers to."""
    if isinstance(scope, MetadataFilterScope):
        name = scope.metadata_property
        return lambda d: d.metadata.get(name)
    if isinstance(scope, SuggestionFilterScope):
        return lambda d: d.suggestions.get(scope.question, {}).get(scope.property)
    if isinstance(scope, RecordFilterScope):
        name = scope.property
        return lambda d: d.record.get(name)
    raise ValueError(f"Cannot process request for search scope {scope}")


def _value_test(f: Union[TermsFilter, RangeFilter]) -> Callable[[Any], bool]:
    if isinstance(f, TermsFilter):
        return _term_matcher(f.values)
    if isinstance(f, RangeFilter):
        return lambda v: _in_range(v, f.ge, f.le)
    raise ValueError(f"Cannot process filter {f}")


def compile_filter(f: Any) -> Callable[[_Doc], bool]:
    """A filter tree as a predicate over documents (ES semantics: any value of a multi-valued field)."""
    if isinstance(f, AndFilter):
        preds = [compile_filter(x) for x in f.filters]
        if len(preds) == 1:
            return preds[0]
        return lambda d: all(p(d) for p in preds)
    if isinstance(f.scope, ResponseFilterScope):
        return _response_filter(f)
    value, test = _scope_value(f.scope), _value_test(f)

    def pred(d: _Doc) -> bool:
        v = value(d)
        if isinstance(v, (list, tuple)):
            return any(test(x) for x in v if x is not None)
        return v is not None and test(v)

    return pred


def _response_filter(f: Any) -> Callable[[_Doc], bool]:
    scope: ResponseFilterScope = f.scope
    uid = str(scope.user.id) if scope.user else None
    if scope.question:
        q, test = scope.question, _value_test(f)
        return lambda d: any(test(v) for r in d.user_responses(uid) for v in _as_list(r["values"].get(q)))
    if scope.property == "status" and isinstance(f, TermsFilter):
        statuses = {_plain(v) for v in f.values}
        pending = ResponseStatusFilter.pending.value in statuses
        statuses.discard(ResponseStatusFilter.pending.value)

        def pred(d: _Doc) -> bool:
            rs = d.user_responses(uid)
            return (pending and not rs) or any(r["status"] in statuses for r in rs)

        return pred
    raise ValueError(f"Cannot process filter scope {scope}")


def _sort_value(order: Order) -> Callable[[_Doc], Any]:
    scope, desc = order.scope, order.order == SortOrder.desc
    if isinstance(scope, ResponseFilterScope):
        uid = str(scope.user.id) if scope.user else None

        def response_value(d: _Doc):  # ES nested sort, mode "avg"
            vals = [
                r["values"].get(scope.question) if scope.question else r.get(scope.property)
                for r in d.user_responses(uid)
            ]
            vals = [v for v in vals if v is not None]
            nums = [_num(v) for v in vals]
            if vals and None not in nums:
                return sum(nums) / len(nums)
            return (max if desc else min)(map(str, vals)) if vals else None

        return response_value
    stored = _scope_value(scope)

    def value(d: _Doc):  # ES array sort: min ascending, max descending
        v = stored(d)
        if v is None or not isinstance(v, (list, tuple)):
            n = _num(v) if v is not None else None
            return n if n is not None else (None if v is None else str(v))
        vals = [x for x in v if x is not None]
        nums = [_num(x) for x in vals]
        if vals and None not in nums:
            vals = nums
        else:
            vals = [str(v) for v in vals]
        return (max if desc else min)(vals) if vals else None

    return value


def sort_docs(hits: List[Tuple[float, _Doc]], sort: List[Order]) -> List[Tuple[float, _Doc]]:
    """Stable multi-key sort, keys applied last to first; missing values last in both directions."""
    for order in reversed(sort):
        key = _sort_value(order)
        keyed = [(key(d), s, d) for s, d in hits]
        present = [x for x in keyed if x[0] is not None]
        missing = [(s, d) for k, s, d in keyed if k is None]
        if len({type(k) for k, _, _ in present}) > 1:
            present = [(str(k), s, d) for k, s, d in present]
        present.sort(key=lambda x: x[0], reverse=order.order == SortOrder.desc)
        hits = [(s, d) for _, s, d in present] + missing
    return hits


def _user_shuffle(user_id: Any, record_id: str) -> float:
    """A per-user, per-record number in (0, 1]: the annotator's queue order (ES random_score by user)."""
    digest = hashlib.blake2b(f"{user_id}|{record_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 1) / 2**64


def _text_scorer(dataset: Dataset, query: Union[TextQuery, str, None]) -> Optional[Callable[[_Doc], float]]:
    if query is None:
        return None
    if isinstance(query, str):
        query = TextQuery(q=query)
    if query.field and dataset.field_by_name(query.field) is None:
        raise Exception(f"Field {query.field} not found in dataset {dataset.id}")
    scorer, field = parse_query(query.q), query.field
    if field:
        return lambda d: scorer({field: d.texts[field]} if field in d.texts else {})
    return lambda d: scorer(d.texts)


# ------------------------------------------------------------------------------------- the engine
@SearchEngine.register(engine_name=ENGINE_NAME)
class KasautiSearchEngine(SearchEngine):
    def __init__(self, index: Index = INDEX):
        self.index = index

    @classmethod
    async def new_instance(cls) -> "KasautiSearchEngine":
        return cls()

    async def close(self):
        pass

    async def ping(self) -> bool:
        return True

    async def info(self) -> dict:
        docs = sum(len(d) for d in self.index.datasets.values())
        return {"version": {"number": "1", "distribution": ENGINE_NAME}, "datasets": len(self.index.datasets),
                "records": docs}

    # -------------------------------------------------------------- index management
    async def create_index(self, dataset: Dataset):
        self.index.docs(dataset.id)

    async def delete_index(self, dataset: Dataset):
        self.index.drop(dataset.id)

    async def configure_metadata_property(self, dataset: Dataset, metadata_property: MetadataProperty):
        pass  # schemaless: metadata values are stored as given

    async def configure_index_vectors(self, vector_settings: VectorSettings):
        pass

    # -------------------------------------------------------------- documents
    async def index_records(self, dataset: Dataset, records: Iterable[Record]):
        for record in records:
            self.index.put(_Doc(dataset, record))

    async def partial_record_update(self, record: Record, **update):
        doc = self.index.doc(record.id, record.dataset_id)
        if doc is None:
            return
        for key, value in update.items():
            if key == "metadata":
                doc.metadata = _plain(dict(value or {}))
            elif key in doc.record:
                doc.record[key] = _plain(value) if key == "status" else value

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]):
        for record in records:
            self.index.remove(dataset.id, record.id)

    async def update_record_response(self, response: Response):
        doc = self.index.doc(response.record_id, getattr(response.record, "dataset_id", None))
        if doc is not None:
            doc.responses[str(response.id)] = _response(response)

    async def delete_record_response(self, response: Response):
        doc = self.index.doc(response.record_id)
        if doc is not None:
            doc.responses.pop(str(response.id), None)

    async def update_record_suggestion(self, suggestion: Suggestion):
        doc = self.index.doc(suggestion.record_id)
        if doc is not None:
            doc.suggestions[suggestion.question.name] = _suggestion(suggestion)

    async def delete_record_suggestion(self, suggestion: Suggestion):
        doc = self.index.doc(suggestion.record_id)
        if doc is not None:
            doc.suggestions.pop(suggestion.question.name, None)

    # -------------------------------------------------------------- progress and metrics
    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        counts = collections.Counter(d.record["status"] for d in self.index.docs(dataset.id).values())
        counts.pop(None, None)
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        if dataset.is_draft:
            return {}
        uid = str(user.id)
        counts = collections.Counter(
            r["status"] for d in self.index.docs(dataset.id).values() for r in d.user_responses(uid)
        )
        return {"total": sum(counts.values()), **counts}

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        name = metadata_property.name
        per_doc = [[v for v in _as_list(d.metadata.get(name)) if v is not None]
                   for d in self.index.docs(metadata_property.dataset_id).values()]
        if metadata_property.type == MetadataPropertyType.terms:
            counts = collections.Counter(t for vals in per_doc for t in {str(v) for v in vals})
            return TermsMetrics(
                total=sum(len(vals) for vals in per_doc),
                values=[TermsMetrics.TermCount(term=t, count=c)
                        for t, c in sorted(counts.items(), key=lambda x: (-x[1], x[0]))],
            )
        nums = [n for vals in per_doc for n in map(_num, vals) if n is not None]
        if metadata_property.type == MetadataPropertyType.integer:
            return IntegerMetadataMetrics(min=int(min(nums)) if nums else None, max=int(max(nums)) if nums else None)
        return FloatMetadataMetrics(min=min(nums) if nums else None, max=max(nums) if nums else None)

    # -------------------------------------------------------------- search
    async def search(
        self,
        dataset: Dataset,
        query: Optional[Union[TextQuery, str]] = None,
        filter: Optional[Any] = None,
        sort: Optional[List[Order]] = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Optional[Union[UUID, str]] = None,
    ) -> SearchResponses:
        pred = compile_filter(filter) if filter else None
        scorer = _text_scorer(dataset, query)
        hits: List[Tuple[float, _Doc]] = []
        for d in self.index.ordered(dataset.id):
            if pred is not None and not pred(d):
                continue
            score = scorer(d) if scorer else 1.0
            if score > 0:
                hits.append((score * _user_shuffle(user_id, d.id) if user_id else score, d))
        if sort:
            hits = sort_docs(hits, sort)
        elif scorer is not None or user_id:
            hits.sort(key=lambda x: -x[0])
        page = hits[offset : offset + limit]
        return SearchResponses(items=[SearchResponseItem(record_id=d.uuid, score=s) for s, d in page], total=len(hits))

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: Optional[List[float]] = None,
        record: Optional[Record] = None,
        query: Optional[Union[TextQuery, str]] = None,
        filter: Optional[Any] = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: Optional[float] = None,
    ) -> SearchResponses:
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        vec = value or record.vector_value_by_vector_settings(vector_settings)
        if not vec:
            raise ValueError("Cannot find a vector value to apply with provided info")
        if order == SimilarityOrder.least_similar:
            vec = [-x for x in vec]
        key, exclude = str(vector_settings.id), str(record.id) if record else None
        norm = math.sqrt(sum(x * x for x in vec)) or 1.0
        pred = compile_filter(filter) if filter else None
        scorer = _text_scorer(dataset, query)
        hits = []
        for d in self.index.ordered(dataset.id):
            v = d.vectors.get(key)
            if not v or d.id == exclude or (pred and not pred(d)) or (scorer and scorer(d) <= 0):
                continue
            cos = sum(a * b for a, b in zip(vec, v)) / (norm * (math.sqrt(sum(x * x for x in v)) or 1.0))
            score = (1 + cos) / 2
            if threshold is None or score >= threshold:
                hits.append((score, d))
        hits.sort(key=lambda x: -x[0])
        hits = hits[:max_results]
        return SearchResponses(items=[SearchResponseItem(record_id=d.uuid, score=s) for s, d in hits], total=len(hits))


async def tokenize_all(batch: int = 200) -> None:
    """Tokenise every indexed text field, yielding to the server's loop between batches (run as a
    task once the server is ready, so the first text query does not pay for all of them)."""
    import asyncio

    docs = [d for docs in list(INDEX.datasets.values()) for d in list(docs.values())]
    for i in range(0, len(docs), batch):
        for d in docs[i : i + batch]:
            for text in d.texts.values():
                text.counts
        await asyncio.sleep(0)


async def rebuild_from_db() -> int:
    """Re-create the whole index from the SQL database; returns the number of records indexed.

    Reads plain columns (no ORM objects or eager loads): records are streamed in batches, and
    responses, suggestions and vectors are grouped by record in memory first.
    """
    from argilla_server.database import AsyncSessionLocal
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    INDEX.clear()
    async with AsyncSessionLocal() as db:
        datasets = {ds.id: ds for ds in (await db.scalars(
            select(Dataset).options(selectinload(Dataset.fields), selectinload(Dataset.questions)))).all()}
        questions = {q.id: SimpleNamespace(name=q.name) for ds in datasets.values() for q in ds.questions}
        related = collections.defaultdict(lambda: {"responses": [], "suggestions": [], "vectors": []})
        for r in await db.execute(select(Response.id, Response.record_id, Response.user_id, Response.status,
                                         Response.values)):
            related[r.record_id]["responses"].append(r)
        for s in await db.execute(select(Suggestion.record_id, Suggestion.question_id, Suggestion.type,
                                         Suggestion.agent, Suggestion.score, Suggestion.value)):
            related[s.record_id]["suggestions"].append(SimpleNamespace(
                question=questions[s.question_id], type=s.type, agent=s.agent, score=s.score, value=s.value))
        for v in await db.execute(select(Vector.record_id, Vector.vector_settings_id, Vector.value)):
            related[v.record_id]["vectors"].append(v)
        for ds in datasets.values():
            INDEX.docs(ds.id)
        n = 0
        rows = await db.stream(select(Record.id, Record.dataset_id, Record.external_id, Record.status, Record.fields,
                                      Record.metadata_.label("metadata"), Record.inserted_at, Record.updated_at))
        async for batch in rows.partitions(1000):
            for r in batch:
                record = SimpleNamespace(id=r.id, external_id=r.external_id, status=r.status, fields=r.fields,
                                         metadata_=r.metadata, inserted_at=r.inserted_at, updated_at=r.updated_at,
                                         **related.pop(r.id, {}))
                INDEX.put(_Doc(datasets[r.dataset_id], record))
            n += len(batch)
    return n
