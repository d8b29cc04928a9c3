"""LLM judges: rubric prompts through OpenAI-compatible endpoints or vLLM, into a resumable ledger."""

from .config import JudgeConfig
from .ledger import Ledger
from .runner import DryRun, Progress, Summary, dry_run, limit_items, read_sample, run_judge

__all__ = ["DryRun", "JudgeConfig", "Ledger", "Progress", "Summary", "dry_run", "limit_items", "read_sample", "run_judge"]
