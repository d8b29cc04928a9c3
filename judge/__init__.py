"""LLM judges: rubric prompts through a registered backend (OpenAI-compatible endpoints, the OpenAI
Batch API, vLLM), into a resumable ledger; direct scores (`run_judge`) or pairwise verdicts (`compare`)."""

from .backends import register_backend
from .config import JudgeConfig
from .ledger import Ledger
from .pairwise import compare, dry_compare, export_comparisons, position_stats, read_pairs
from .runner import DryRun, Progress, Summary, dry_run, limit_items, read_sample, run_judge

__all__ = ["DryRun", "JudgeConfig", "Ledger", "Progress", "Summary", "compare", "dry_compare", "dry_run", "export_comparisons",
           "limit_items", "position_stats", "read_pairs", "read_sample", "register_backend", "run_judge"]
