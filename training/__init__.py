"""Training data from human revisions: MIDB revision pairs, booster examples, booster and student fine-tuning.

Heavy libraries (torch, transformers, trl, peft) are imported only when a model is trained.
"""

from .examples import UnparseableOutput, booster_example, booster_prompt, parse_triple, render_triple, split_by_item
from .midb import MidbError, MidbFile, read_midb
from .pairs import RevisionPair, Triple, edit_distance, select_top
from .train import BoosterConfig, SftConfig, TrainingError, TrainResult, train_booster, train_sft

__all__ = [
    "BoosterConfig", "MidbError", "MidbFile", "RevisionPair", "TrainResult", "TrainingError", "Triple",
    "UnparseableOutput", "booster_example", "booster_prompt", "edit_distance", "parse_triple", "read_midb",
    "render_triple", "select_top", "split_by_item", "train_booster", "train_sft", "SftConfig",
]
