"""Boosting: the booster rewrites items (instruction = prompt, input = context, response) into improved ones.

Generation is batched: transformers (left padding, greedy unless a temperature is set, prompts of
similar token counts in one batch; on a CUDA GPU when there is one, else the CPU) or vLLM on a GPU (``pip install 'kasauti[vllm]'``, the base model with the booster's LoRA adapter
through ``LoRARequest``). Every output goes into a SQLite ledger (``boost.sqlite`` beside the
boosted table) as its batch finishes, keyed by item id + item text + model hash + generation
parameters, so a second run generates only what is missing. Outputs are parsed strictly
(`parse_triple`); an unparseable one is recorded with its status and raw text and left out of
``boosted.parquet``, never kept silently. torch, transformers and vllm are imported only when used.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .examples import UnparseableOutput, booster_prompt, parse_triple
from .pairs import Triple, edit_distance

OK, UNPARSEABLE = "ok", "unparseable"
LEDGER_NAME = "boost.sqlite"
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts (its default: 16)


class BoostError(ValueError):
    """Boosting that cannot start; the message says what to change."""


@dataclass(frozen=True)
class BoostItem:
    item_id: str
    language: str
    task: str | None
    original: Triple
    source_model: str | None = None


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 1024
    min_new_tokens: int = 0  # no end of sequence before this many tokens; = max_new_tokens: fixed-length outputs (throughput benchmarks)
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0


@dataclass
class BoostResult:
    path: Path
    ledger: Path
    boosted: int
    unparseable: int
    cached: int  # items whose output was already in the ledger
    generated: int


def booster_files(booster_dir: str | Path) -> tuple[Path, Path | None, Path | None]:
    """(merged model directory, adapter directory or None, base model directory or None) of a booster.

    `booster_dir` is what `train_booster` wrote (``model/``, ``adapter/``, ``config.json``) or a plain
    transformers model directory.
    """
    root = Path(booster_dir).expanduser()
    if (root / "model" / "config.json").is_file():
        adapter = root / "adapter" if (root / "adapter" / "adapter_config.json").is_file() else None
        base = None
        if adapter is not None and (root / "config.json").is_file():
            directory, gguf = json.loads((root / "config.json").read_text(encoding="utf-8"))["base_resolved"]
            base = Path(directory) / gguf if gguf else Path(directory)
        return root / "model", adapter, base
    if (root / "config.json").is_file():
        return root, None, None
    raise BoostError(f"booster {root}: not found: give the directory `kasauti train booster` wrote (with model/) "
                     "or a transformers model directory (with config.json)")


def model_hash(model_dir: Path) -> str:
    """SHA-256 over the names and bytes of the files in `model_dir` (the merged booster)."""
    h = hashlib.sha256()
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(model_dir)).encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def item_key(item: BoostItem, model: str, params: GenerationParams) -> str:
    text = json.dumps([item.item_id, *vars(item.original).values(), model, asdict(params)], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
  key TEXT PRIMARY KEY, item_id TEXT NOT NULL, model TEXT NOT NULL, params TEXT NOT NULL,
  status TEXT NOT NULL, raw_text TEXT NOT NULL, error TEXT, instruction TEXT, input TEXT, response TEXT
)
"""


class BoostLedger:
    """The boost ledger: one row per item x model x parameters, committed as each batch finishes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise BoostError(f"{self.path}: not a boost ledger ({exc}); move it away to start a new one") from None

    def close(self) -> None:
        self.db.close()

    def rows(self, keys: Sequence[str]) -> dict[str, tuple]:
        """key -> (status, raw_text, error, instruction, input, response) of the recorded `keys`."""
        wanted = set(keys)
        cur = self.db.execute("SELECT key, status, raw_text, error, instruction, input, response FROM outputs")
        return {k: rest for k, *rest in cur if k in wanted}

    def record(self, rows: Sequence[tuple]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


class TransformersGenerator:
    """Batched generation with transformers: left padding, greedy when temperature is 0; on a CUDA GPU
    when there is one (bf16 where it has it), else on the CPU in float32 with :func:`training.kvcache.growing_cache`."""

    def __init__(self, model_dir: Path, params: GenerationParams):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch, self.params = torch, params
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        cuda = torch.cuda.is_available()
        dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16 if cuda else torch.float32
        self.device = "cuda" if cuda else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()

    def prompt_tokens(self, conversations: Sequence[list[dict]]) -> list[int]:
        """Tokens of each conversation's prompt as generation sees it."""
        texts = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def __call__(self, conversations: Sequence[list[dict]]) -> list[str]:
        p, tok = self.params, self.tokenizer
        texts = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
        enc = tok(texts, padding=True, return_tensors="pt", add_special_tokens=False).to(self.device)
        args = {"do_sample": True, "temperature": p.temperature, "top_p": p.top_p} if p.temperature > 0 else {"do_sample": False}
        if p.temperature > 0:
            self.torch.manual_seed(p.seed)
        if self.device == "cpu":  # a cache that does not copy itself at every step (see training.kvcache)
            from .kvcache import growing_cache

            args["cache"] = growing_cache(self.model.config)
        with self.torch.inference_mode():
            out = self.model.generate(**enc, max_new_tokens=p.max_new_tokens, min_new_tokens=p.min_new_tokens,
                                      pad_token_id=tok.pad_token_id, **args)
        return tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


class VLLMGenerator:
    """Offline batched generation with vLLM: the base model with the booster's LoRA (or the merged model)."""

    def __init__(self, model_dir: Path, adapter: Path | None, base: Path | None, params: GenerationParams):
        try:
            self.vllm = importlib.import_module("vllm")
        except ImportError as exc:
            raise BoostError("the vllm backend needs vLLM and a CUDA GPU: pip install 'kasauti[vllm]'") from exc
        lora = adapter is not None and base is not None
        args, self.lora = {}, None
        if lora:
            self.lora = importlib.import_module("vllm.lora.request").LoRARequest("booster", 1, str(adapter))
            rank = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))["r"]
            args = {"enable_lora": True, "max_lora_rank": min(r for r in VLLM_LORA_RANKS if r >= rank)}
        self.llm = self.vllm.LLM(model=str(base if lora else model_dir), **args)
        self.sampling = self.vllm.SamplingParams(max_tokens=params.max_new_tokens, min_tokens=params.min_new_tokens,
                                                 temperature=params.temperature, top_p=params.top_p, seed=params.seed)

    def __call__(self, conversations: Sequence[list[dict]]) -> list[str]:
        outs = self.llm.chat(list(conversations), self.sampling, use_tqdm=False, lora_request=self.lora)
        return [o.outputs[0].text for o in outs]


def _outcome(text: str) -> tuple[str, str | None, Triple | None]:
    try:
        return OK, None, parse_triple(text)
    except UnparseableOutput as exc:
        return UNPARSEABLE, str(exc), None


def plan_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of `lengths` in batches of `batch_size`, shortest prompts first: prompts of similar token
    counts share a batch, so left padding wastes little of the prefill (stable for equal lengths)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def boost(booster_dir: str | Path, items: Sequence[BoostItem], out_path: str | Path, *, batch_size: int = 8,
          params: GenerationParams = GenerationParams(), backend: str = "transformers") -> BoostResult:
    """Rewrite `items` with the booster into the boosted table at `out_path`, resuming from its ledger.

    Counts add up: boosted + unparseable == len(items), cached + generated == len(items).
    """
    import pandas as pd

    import studytables as st

    if backend not in ("transformers", "vllm"):
        raise BoostError(f"unknown backend {backend!r}; use transformers or vllm")
    if batch_size < 1:
        raise BoostError(f"batch size must be at least 1, got {batch_size}")
    if not 0 <= params.min_new_tokens <= params.max_new_tokens:
        raise BoostError(f"min_new_tokens must be between 0 and max_new_tokens ({params.max_new_tokens}), "
                         f"got {params.min_new_tokens}")
    twice = sorted(i for i, n in Counter(it.item_id for it in items).items() if n > 1)
    if twice:
        raise BoostError(f"item ids must be unique; repeated: {twice[:5]}")
    model_dir, adapter, base = booster_files(booster_dir)
    model = model_hash(model_dir)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ledger = BoostLedger(out.with_name(LEDGER_NAME))
    try:
        keys = [item_key(it, model, params) for it in items]
        done = ledger.rows(keys)
        todo = [(k, it) for k, it in zip(keys, items) if k not in done]
        batches = []
        if todo:
            generator = (VLLMGenerator(model_dir, adapter, base, params) if backend == "vllm"
                         else TransformersGenerator(model_dir, params))
            prompts = [booster_prompt(it.original) for _, it in todo]
            # vLLM schedules its own batches: the input order
            lengths = generator.prompt_tokens(prompts) if backend == "transformers" else [0] * len(todo)
            batches = plan_batches(lengths, batch_size)
        param_text = json.dumps(asdict(params))
        for rows_of in batches:
            batch = [todo[i] for i in rows_of]
            texts = generator([prompts[i] for i in rows_of])
            rows = []
            for (key, it), text in zip(batch, texts, strict=True):
                status, error, triple = _outcome(text)
                fields = (triple.instruction, triple.input, triple.response) if triple else (None, None, None)
                rows.append((key, it.item_id, model, param_text, status, text, error, *fields))
            ledger.record(rows)
        recorded = ledger.rows(keys)
    finally:
        ledger.close()
    boosted = []
    for key, it in zip(keys, items):
        status, _raw, _error, instruction, input_, response = recorded[key]
        if status == OK:
            new = Triple(instruction, input_, response)
            o = it.original
            boosted.append((it.item_id, it.language, it.task, new.instruction, new.input, new.response, o.instruction,
                            o.input, o.response, edit_distance(o, new), it.source_model, model, param_text))
    st.write(st.BOOSTED, pd.DataFrame(boosted, columns=st.BOOSTED.names), out)
    return BoostResult(out, out.with_name(LEDGER_NAME), boosted=len(boosted), unparseable=len(items) - len(boosted),
                       cached=len(items) - len(todo), generated=len(todo))


def sample_items(sample) -> list[BoostItem]:
    """Boost items of a frame in the sample's shape (item_id, language, task, prompt, context, response, source_model)."""
    return [BoostItem(r.item_id, r.language, r.task, Triple(r.prompt, r.context if isinstance(r.context, str) else "",
                                                            r.response), r.source_model)
            for r in sample.itertuples(index=False)]


def read_items(path: str | Path, columns, fmt: str = "auto") -> list[BoostItem]:
    """Boost items of any data file the intake reads, its columns mapped as `columns` (the study's
    ``data.columns``); BoostError naming the file, row and column of a missing or non-text value."""
    from sampling.sources import SourceError, detect_format, iter_chunks

    path = Path(path)
    if not path.exists():
        raise BoostError(f"{path}: no such data file; give --data a file the intake reads (jsonl, json, parquet, csv)")
    wanted = {"id": columns.id, "language": columns.language, "prompt": columns.prompt, "response": columns.response}
    missing = [f for f, c in wanted.items() if c is None]
    if missing:
        raise BoostError(f"data.columns maps no column for {missing}; boosting needs instruction and response columns")
    optional = {"task": columns.task, "context": columns.context}
    fields = {c: f for f, c in {**wanted, **{f: c for f, c in optional.items() if c}}.items()}
    items = []
    try:
        for chunk in iter_chunks(path, detect_format(path, fmt), fields):
            where = chunk.file or path.name
            if chunk.problems:
                row, column, what = chunk.problems[0]
                raise BoostError(f"{path}: {where}: row {row - chunk.offset}, column {column!r}: {what}; fix the value")
            values = {fields[c]: chunk.batch.column(c).to_pylist() for c in chunk.batch.schema.names}
            for i, row in enumerate(chunk.rows.to_pylist()):
                get = {f: v[i] for f, v in values.items()}
                for f in wanted:
                    if get[f] is None or (f != "prompt" and not get[f].strip()):
                        raise BoostError(f"{path}: {where}: row {row - chunk.offset}, column {wanted[f]!r}: expected "
                                         "text, got nothing; fill it or drop the row")
                items.append(BoostItem(get["id"], get["language"], get.get("task"),
                                       Triple(get["prompt"], get.get("context") or "", get["response"])))
    except SourceError as exc:
        raise BoostError(str(exc)) from None
    return items
