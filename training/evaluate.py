"""`kasauti eval`: the base model against the student `kasauti train sft` fine-tuned from it.

Two evaluations, written together to ``eval/eval.parquet`` (``studytables.EVAL``):

- lm-evaluation-harness, through its Python API, on local YAML tasks over local files written
  here (``eval/lm_eval/``), per language over the held-out accepted items: ``loglikelihood_rolling``
  of the responses alone (bits per byte, byte and word perplexity) and ``loglikelihood`` of each
  response given its prompt in the chat template (bits per byte). The hub is never asked
  (``HF_DATASETS_OFFLINE`` / ``HF_HUB_OFFLINE``; the datasets cache is ``eval/lm_eval/cache``).
- The pairwise judge (`judge.pairwise.compare`, the study's judges): both models answer the
  held-out items' prompts and the translated AlpacaEval / MT-Bench prompts of
  ``training.eval.benchmarks_dir`` (MIDB's layout: ``alpaca_eval/<Language>.json``,
  ``mt_bench/<Language>.json``; MT-Bench's first turn only, since the second turn follows each
  model's own first answer), greedily; the judge compares each pair in both orders. The win rate of
  the student over the base per benchmark and language counts ties as half a win, with a
  prompt-bootstrap 95% CI, and each judge's position consistency
  (`reports.pairwise.winrate.versus`).

A second run reuses what it can: responses (``eval/responses.parquet``) whose model, messages and
generation parameters are unchanged, the judge's answers (its ledger ``eval/judge_ledger.sqlite``)
and lm-evaluation-harness results for the same model and data (``eval/lm_eval/results.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .examples import chat_prompt
from .train import STUDENT_DIR, TrainingError, load_base, plain, resolve_base

EVAL_DIR = "eval"
HELDOUT = "heldout"
BENCHMARKS = ("alpaca_eval", "mt_bench")
MODELS = ("base", "student")
LM_EVAL_TASKS = {  # kind -> (output type, {EVAL metric: lm-eval metric}); one task of each kind per language
    "heldout": ("loglikelihood_rolling", {m: m for m in ("bits_per_byte", "byte_perplexity", "word_perplexity")}),
    "response": ("loglikelihood", {"response_bits_per_byte": "bits_per_byte"}),
}


class EvalError(ValueError):
    """An evaluation that cannot run; the message says what to change."""


class EvalConfig(BaseModel):
    """The ``training.eval:`` section: what `kasauti eval` compares the student and its base on."""

    model_config = ConfigDict(extra="forbid")

    benchmarks_dir: str | None = Field(None, description="A directory in MIDB's layout (alpaca_eval/<Language>.json, "
                                       "mt_bench/<Language>.json), e.g. ../shared/data/midb; relative to the study. "
                                       "None: the held-out items only.")
    benchmarks: list[str] = Field(list(BENCHMARKS), min_length=1, description="Benchmarks of benchmarks_dir to use.")
    prompts_per_language: int = Field(20, ge=1, description="Prompts drawn (seeded) per benchmark and language.")
    judges: list[str] | None = Field(None, description="Judges (`judges[].name`) that compare; default: all.")
    overall: bool = Field(True, description="One overall criterion per pair; false: one per metric of the rubric.")
    max_new_tokens: int = Field(256, ge=1)
    batch_size: int = Field(8, ge=1, description="Prompts per generation batch, and lm-evaluation-harness's batch.")
    n_boot: int = Field(1000, ge=100, description="Bootstrap resamples of prompts for the win rates' CIs.")
    seed: int = 0


@dataclass(frozen=True)
class EvalPrompt:
    benchmark: str
    prompt_id: str
    language: str
    task: str
    item: dict  # prompt, context, conversation, system_prompt: what the judge shows
    messages: list[dict[str, str]]


@dataclass
class EvalResult:
    path: Path
    prompts: dict[str, int]  # benchmark -> prompts
    set_aside: dict[str, int]  # why a benchmark record was not used -> records
    generated: int
    cached: int
    summaries: list = field(default_factory=list)  # the judges' runs
    lm_eval_cached: bool = False
    rows: int = 0


def _sha(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()


# --- prompts -------------------------------------------------------------------------------------


def heldout_prompts(root: Path, eval_items: Sequence[str]):
    """(prompts, accepted rows) of the student's held-out items, from ``export/accepted``."""
    import studytables as st

    if not eval_items:
        raise EvalError(f"{root / STUDENT_DIR}: the student was trained with no held-out item, so there are no held-out "
                        "prompts to evaluate on; set `training.sft.eval_share` above 0 and run `kasauti train sft` again")
    accepted = plain(st.read(st.EXPORT_ACCEPTED, root / st.EXPORT_ACCEPTED.file))
    held = accepted[accepted["item_id"].isin(set(eval_items))]
    missing = sorted(set(eval_items) - set(held["item_id"]))
    if missing:
        raise EvalError(f"{root / st.EXPORT_ACCEPTED.file}: the student's held-out items {missing[:5]} are no longer "
                        "accepted; run `kasauti train sft` again on this export")
    prompts = []
    for r in held.itertuples(index=False):
        item = {"prompt": r.prompt, "context": r.context, "conversation": r.conversation, "system_prompt": r.system_prompt}
        prompts.append(EvalPrompt(HELDOUT, r.item_id, r.language, r.task, item, chat_prompt(**item)))
    return prompts, held


def benchmark_prompts(directory: Path, benchmarks: Sequence[str], per_language: int, seed: int):
    """(prompts, set aside counts) from MIDB-layout files: a seeded draw of `per_language` prompts per file.

    A record's prompt is its ``instruction`` (AlpacaEval; ``Instruction`` too) or its first turn (MT-Bench);
    records without one (some translated files carry translated keys) are set aside and counted."""
    from sampling.languages import UnknownLanguage, normalise

    if not directory.is_dir():
        raise EvalError(f"training.eval.benchmarks_dir: {directory} is not a directory; give the folder holding "
                        "alpaca_eval/ and mt_bench/ (e.g. ../shared/data/midb)")
    prompts, set_aside = [], Counter()
    for bench in benchmarks:
        files = sorted((directory / bench).glob("*.json"))
        if not files:
            raise EvalError(f"{directory / bench}: no <Language>.json files; check training.eval.benchmarks")
        for path in files:
            try:
                language = normalise(path.stem)
                records = json.loads(path.read_text(encoding="utf-8"))
            except (UnknownLanguage, json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise EvalError(f"{path}: {exc}; name files after their language and give a JSON list") from None
            if not isinstance(records, list):
                raise EvalError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
            usable = []
            for number, rec in enumerate(records, 1):
                text = _benchmark_text(rec)
                if text is None:
                    set_aside[f"{bench}: no instruction or first turn"] += 1
                else:
                    usable.append((number, text))
            for number, text in sorted(random.Random(seed).sample(usable, min(per_language, len(usable)))):
                item = {"prompt": text, "context": None, "conversation": None, "system_prompt": None}
                prompts.append(EvalPrompt(bench, f"{bench}/{language}/{number}", language, bench, item, chat_prompt(text)))
            if len(usable) > per_language:
                set_aside[f"{bench}: not drawn"] += len(usable) - per_language
    return prompts, dict(set_aside)


def _benchmark_text(rec) -> str | None:
    if not isinstance(rec, dict):
        return None
    text = rec.get("instruction", rec.get("Instruction"))
    if text is None and isinstance(rec.get("turns"), list) and rec["turns"]:
        text = rec["turns"][0]
    return text if isinstance(text, str) and text.strip() else None


# --- models and responses ------------------------------------------------------------------------


def student_run(root: Path) -> tuple[dict, str]:
    """(metrics, base) of the study's student: what `train_sft` wrote, and the base model it was trained from."""
    student = root / STUDENT_DIR
    if not (student / "metrics.json").is_file() or not (student / "model" / "config.json").is_file():
        raise EvalError(f"{student}: no trained student; run `kasauti train sft {root}` first")
    metrics = json.loads((student / "metrics.json").read_text(encoding="utf-8"))
    base = json.loads((student / "config.json").read_text(encoding="utf-8"))["config"]["base"]
    try:
        resolve_base(base)
    except TrainingError as exc:
        raise EvalError(f"the student's base model is gone: {exc}") from None
    return metrics, base


def model_dirs(root: Path, base: str) -> dict[str, Path]:
    """{'base': dir, 'student': dir}: the base model and the student's merged model (a GGUF base is rebuilt once
    into ``eval/base/`` so that every tool can load it)."""
    directory, gguf = resolve_base(base)
    if gguf:
        rebuilt = root / EVAL_DIR / "base"
        if not (rebuilt / "config.json").is_file():
            model, tokenizer = load_base(base)
            model.save_pretrained(rebuilt)
            tokenizer.save_pretrained(rebuilt)
        directory = rebuilt
    return {"base": directory, "student": root / STUDENT_DIR / "model"}


def responses(dirs: dict[str, Path], hashes: dict[str, str], prompts: Sequence[EvalPrompt], path: Path, params,
              batch_size: int):
    """Both models' responses to `prompts` (``studytables.EVAL_RESPONSES``), generating only those not already in
    `path` for the same model (``hashes``: `training.boost.model_hash` of each directory), messages and parameters,
    in batches of prompts of similar token counts (`training.boost.plan_batches`); returns (frame, generated, cached)."""
    import pandas as pd

    import studytables as st

    from .boost import TransformersGenerator, plan_batches

    param_text = json.dumps(asdict(params))
    old = st.read(st.EVAL_RESPONSES, path) if path.is_file() else pd.DataFrame(columns=st.EVAL_RESPONSES.names)
    known = {(r.model_hash, r.messages, r.params): r.response for r in old.itertuples(index=False)}
    rows, generated, cached = [], 0, 0
    for model, directory in dirs.items():
        digest = hashes[model]
        texts = [json.dumps(p.messages, ensure_ascii=False) for p in prompts]
        todo = [i for i, t in enumerate(texts) if (digest, t, param_text) not in known]
        if todo:
            generate = TransformersGenerator(directory, params)
            for rows_of in plan_batches(generate.prompt_tokens([prompts[i].messages for i in todo]), batch_size):
                batch = [todo[j] for j in rows_of]
                for i, out in zip(batch, generate([prompts[i].messages for i in batch]), strict=True):
                    known[(digest, texts[i], param_text)] = out
        generated, cached = generated + len(todo), cached + len(prompts) - len(todo)
        rows += [(model, digest, p.benchmark, p.prompt_id, p.language, p.task, t, known[(digest, t, param_text)], param_text)
                 for p, t in zip(prompts, texts)]
    frame = pd.DataFrame(rows, columns=st.EVAL_RESPONSES.names)
    st.write(st.EVAL_RESPONSES, frame, path)
    return frame, generated, cached


# --- the pairwise judge --------------------------------------------------------------------------


def pairwise_inputs(prompts: Sequence[EvalPrompt], answers):
    """(pairs, sample) frames for `judge.pairwise.compare`: per prompt, the base's response (a) and the student's (b).
    A pair's id hashes both responses, so a changed model is a new pair."""
    import pandas as pd

    got = {(r.model, r.prompt_id): r.response for r in answers.itertuples(index=False)}
    pairs, sample = [], []
    for p in prompts:
        texts = [got[(m, p.prompt_id)] for m in MODELS]
        ids = [f"{p.prompt_id}|{m}" for m in MODELS]
        sample += [{"item_id": i, "language": p.language, "task": p.task, **p.item, "response": t}
                   for i, t in zip(ids, texts)]
        pairs.append({"pair_id": _sha(p.prompt_id, texts)[:16], "prompt_id": p.prompt_id, "language": p.language,
                      "task": p.task, "item_a": ids[0], "item_b": ids[1], "model_a": MODELS[0], "model_b": MODELS[1],
                      "shown_order": "ab", "repeat_of": None, "benchmark": p.benchmark})
    return pd.DataFrame(pairs), pd.DataFrame(sample)


def pairwise_rows(comparisons, pairs, n_boot: int, seed: int) -> list[dict]:
    """EVAL rows per benchmark: the student's win rate over the base (ties half) per language and ``all``, with CIs,
    and each judge's position consistency."""
    from reports.pairwise.winrate import versus

    bench = dict(zip(pairs["pair_id"], pairs["benchmark"]))
    comparisons = comparisons[comparisons["pair_id"].isin(bench)]
    rows = []
    for benchmark, frame in comparisons.groupby(comparisons["pair_id"].map(bench), sort=True):
        both = versus(frame, model="student", over="base", n_boot=n_boot, seed=seed)
        for r in both["win_rate"].itertuples(index=False):
            for metric, lo, hi in (("win_rate", r.ci_low, r.ci_high), ("win_rate_no_ties", r.no_ties_ci_low,
                                                                        r.no_ties_ci_high), ("tie_share", None, None)):
                rows.append({"model": "student", "benchmark": benchmark, "language": r.language, "metric": metric,
                             "value": getattr(r, metric), "ci_low": lo, "ci_high": hi, "n": r.n_comparisons,
                             "judge": r.raters, "criterion": r.criterion})
        for r in both["position"].itertuples(index=False):
            rows.append({"model": "student", "benchmark": benchmark, "language": "all", "metric": "position_consistency",
                         "value": r.consistency, "ci_low": None, "ci_high": None, "n": r.n_repeated, "judge": r.rater,
                         "criterion": r.criterion})
    return rows


# --- lm-evaluation-harness -----------------------------------------------------------------------


def lm_eval_tasks(held, tokenizer, directory: Path) -> dict[str, tuple[str, str]]:
    """Write the local tasks over the held-out accepted items, per language: ``heldout`` (``loglikelihood_rolling``
    over the responses) and ``response`` (``loglikelihood`` of each response given its prompt in `tokenizer`'s chat
    template, `lm_eval_utils.response_bits_per_byte`); {task name: (kind, language)}."""
    import shutil

    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("lm_eval_utils.py"), directory / "lm_eval_utils.py")
    tasks = {}
    for language, group in held.groupby("language", sort=True):
        data = directory / f"heldout_{language}.jsonl"
        docs = [{"item_id": r.item_id, "text": r.response, "prompt": tokenizer.apply_chat_template(
            chat_prompt(r.prompt, r.context, r.conversation, r.system_prompt), add_generation_prompt=True, tokenize=False)}
            for r in group.itertuples(index=False)]
        data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
        for kind, (output_type, metrics) in LM_EVAL_TASKS.items():
            name = f"kasauti_{kind}_{language}"
            task = {"task": name, "dataset_path": "json",
                    "dataset_kwargs": {"data_files": {"test": str(data)}, "cache_dir": str(directory / "cache")},
                    "test_split": "test", "output_type": output_type,
                    "doc_to_text": "{{prompt}}" if kind == "response" else "", "doc_to_target": "{{text}}",
                    "target_delimiter": "",
                    "metric_list": [{"metric": m, "aggregation": "bits_per_byte" if m == "bits_per_byte" else
                                     "weighted_perplexity", "higher_is_better": False} for m in metrics.values()]}
            text = yaml.safe_dump(task, allow_unicode=True, sort_keys=False)
            if kind == "response":
                text += "process_results: !function lm_eval_utils.response_bits_per_byte\n"
            (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
            tasks[name] = (kind, language)
    return tasks


def lm_eval_rows(dirs: dict[str, Path], hashes: dict[str, str], held, directory: Path,
                 batch_size: int) -> tuple[list[dict], bool]:
    """EVAL rows of lm-evaluation-harness for both models, reused from ``results.json`` when the models (their
    ``hashes``) and tasks are unchanged; (rows, reused)."""
    import importlib.metadata as md

    from transformers import AutoTokenizer

    tasks = lm_eval_tasks(held, AutoTokenizer.from_pretrained(dirs["student"]), directory)
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*"))
             if p.suffix in (".jsonl", ".yaml", ".py")}
    key = _sha(hashes, files, md.version("lm-eval"))
    cache = directory / "results.json"
    saved = json.loads(cache.read_text(encoding="utf-8")) if cache.is_file() else {}
    reused = saved.get("key") == key
    results = saved["results"] if reused else {m: _run_lm_eval(d, list(tasks), directory, batch_size)
                                               for m, d in dirs.items()}
    if not reused:
        cache.write_text(json.dumps({"key": key, "results": results}, indent=2), encoding="utf-8")
    rows = []
    for model, per_task in results.items():
        for name, (n, values) in per_task.items():
            kind, language = tasks[name]
            rows += [{"model": model, "benchmark": HELDOUT, "language": language, "metric": metric, "value": values[m],
                      "ci_low": None, "ci_high": None, "n": n, "judge": None, "criterion": None}
                     for metric, m in LM_EVAL_TASKS[kind][1].items()]
    return rows, reused


def offline() -> None:
    """Never ask the Hugging Face Hub (read by huggingface_hub and datasets when they are first imported)."""
    os.environ["HF_DATASETS_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"


def _run_lm_eval(model_dir: Path, names: list[str], directory: Path, batch_size: int) -> dict:
    """{task: (documents, {metric: value})} of `lm_eval.simple_evaluate` on the local tasks, offline."""
    offline()
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm = HFLM(pretrained=model.to(device), tokenizer=AutoTokenizer.from_pretrained(model_dir), batch_size=batch_size,
              device=device)
    out = simple_evaluate(model=lm, tasks=names, task_manager=TaskManager(include_path=str(directory),
                                                                          include_defaults=False),
                          log_samples=False, verbosity="ERROR")
    return {n: (out["n-samples"][n]["effective"], {k.removesuffix(",none"): v for k, v in out["results"][n].items()
                                                   if k.endswith(",none") and "_stderr" not in k}) for n in names}


# --- the whole evaluation ------------------------------------------------------------------------


def eval_judges(cfg: EvalConfig, judges: Sequence) -> list:
    """The study's judges that compare (`cfg.judges`, or all); EvalError for an unknown name or none at all."""
    names = [j.name for j in judges]
    unknown = sorted(set(cfg.judges or []) - set(names))
    if unknown:
        raise EvalError(f"training.eval.judges: unknown judge(s) {unknown}; the study configures {names}")
    chosen = [j for j in judges if cfg.judges is None or j.name in cfg.judges]
    if not chosen:
        raise EvalError("no judge to compare the models: configure `judges:` in kasauti.yaml")
    return chosen


def evaluate_study(root: str | Path, cfg: EvalConfig, rubric, judges: Sequence, *, progress=None) -> EvalResult:
    """Evaluate the study's student against its base (see the module docstring) into ``eval/``; of the study's
    `judges`, those `eval_judges` chooses compare."""
    import pandas as pd

    import studytables as st
    from judge.pairwise import compare, comparisons

    from .boost import GenerationParams, model_hash

    offline()
    root = Path(root)
    judges = eval_judges(cfg, judges)
    metrics, base = student_run(root)
    prompts, held = heldout_prompts(root, metrics["eval_items"])
    set_aside: dict[str, int] = {}
    if cfg.benchmarks_dir is not None:
        bench_dir = Path(cfg.benchmarks_dir).expanduser()
        bench, set_aside = benchmark_prompts(bench_dir if bench_dir.is_absolute() else root / bench_dir, cfg.benchmarks,
                                             cfg.prompts_per_language, cfg.seed)
        prompts += bench
    dirs = model_dirs(root, base)
    out = root / EVAL_DIR
    out.mkdir(parents=True, exist_ok=True)
    hashes = {m: model_hash(d) for m, d in dirs.items()}  # every byte of both models, read once
    answers, generated, cached = responses(dirs, hashes, prompts, root / st.EVAL_RESPONSES.file,
                                           GenerationParams(max_new_tokens=cfg.max_new_tokens), cfg.batch_size)
    pairs, sample = pairwise_inputs(prompts, answers)
    ledger = out / "judge_ledger.sqlite"
    summaries = [compare(pairs, sample, rubric, j, ledger, overall=cfg.overall, progress=progress) for j in judges]
    rows = pairwise_rows(comparisons(ledger), pairs, cfg.n_boot, cfg.seed)
    lm_rows, reused = lm_eval_rows(dirs, hashes, held, out / "lm_eval", cfg.batch_size)
    table = pd.DataFrame(lm_rows + rows, columns=st.EVAL.names)
    st.write(st.EVAL, table, root / st.EVAL.file)
    return EvalResult(root / st.EVAL.file, dict(Counter(p.benchmark for p in prompts)), set_aside, generated, cached,
                      summaries, reused, len(table))
