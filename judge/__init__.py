"""LLM judges: rubric prompts through a registered backend (OpenAI-compatible endpoints, the OpenAI
Batch API, vLLM), into a resumable ledger; direct scores (`run_judge`) or pairwise verdicts (`compare`)."""

import lazy_loader

# each name is imported from its module on first use: importing the package (or its config) stays light
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "backends": ["register_backend"],
    "config": ["JudgeConfig"],
    "ledger": ["Ledger"],
    "pairwise": ["compare", "compare_study", "dry_compare", "export_comparisons", "position_stats", "read_pairs"],
    "runner": ["LEDGER_FILE", "DryRun", "Progress", "Summary", "dry_run", "judge_study", "limit_items", "read_sample", "run_judge"],
})
