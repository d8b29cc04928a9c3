"""`kasauti demo`: the whole workflow on the shipped PARIKSHA subset, with no keys and no GPU."""

from __future__ import annotations

import re
from pathlib import Path

from kasauti.study import CONFIG_NAME, Study, init_study

DEMO_DATA = Path(__file__).parent / "demo_data" / "pariksha"


def demo_study(directory: Path) -> Study:
    """The demo study in `directory`, created on first use (the data stays inside the package)."""
    if (directory / CONFIG_NAME).exists():
        return Study(directory)
    study = init_study(directory, str(DEMO_DATA), name="pariksha-demo", data_format="pariksha", source_model="model", per_stratum=20)
    text = study.config_path.read_text(encoding="utf-8").replace("system_prompt: null", "system_prompt: system_prompt")
    study.config_path.write_text(text, encoding="utf-8")
    return Study(directory)


JUDGE_BLOCK = """
# A judge for the demo: kasauti's deterministic loopback server (judge/testing.py), which
# speaks the OpenAI chat-completions protocol with logprobs but is NOT a language model: its
# scores are hashes. Point base_url at a real endpoint (and api_key_env at its key) for a real judge.
judges:
  - name: loopback
    model: kasauti-loopback-test-server
    base_url: http://127.0.0.1:0/v1
    logprobs: true
    concurrency: 16
"""


def use_judge_server(study: Study, url: str) -> Study:
    """Point the demo study's loopback judge at `url` (the server's port changes every run)."""
    text = study.config_path.read_text(encoding="utf-8")
    if not re.search(r"^judges:", text, re.M):  # the template mentions `judges:` in comments
        text += JUDGE_BLOCK
    text = re.sub(r"base_url: http://127\.0\.0\.1:\d+/v1", f"base_url: {url}", text)
    study.config_path.write_text(text, encoding="utf-8")
    return Study(study.root)
