"""LLM judges: rubric prompts through a registered backend (OpenAI-compatible endpoints, the OpenAI
Batch API, vLLM), into a resumable ledger."""

from .backends import register_backend
from .config import JudgeConfig
from .ledger import Ledger
from .runner import LEDGER_FILE, DryRun, Progress, Summary, dry_run, judge_study, limit_items, read_sample, run_judge

__all__ = ["LEDGER_FILE", "DryRun", "JudgeConfig", "Ledger", "Progress", "Summary", "dry_run", "judge_study", "limit_items", "read_sample", "register_backend", "run_judge"]
