"""Report settings (the ``report:`` section of kasauti.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_boot: int = Field(1000, ge=0, description="Bootstrap resamples (over items) per cell.")
    seed: int = 0
    min_items: int = Field(10, ge=1, description="Cells with fewer items are marked 'too few to say much'.")
    verdict_min_items: int = Field(30, ge=1, description="Items with a judge score and >= 2 humans needed for a verdict.")
    verdict_tolerance: float = Field(-0.10, le=0, description="Lowest Delta-alpha point estimate still 'inside the human band'.")
    verdict_min_human_alpha: float = Field(0.2, description="Below this human-human alpha the verdict is 'humans disagree' ...")
    verdict_min_human_ac: float = Field(0.8, le=1, description="... unless Gwet's AC among the humans is at least this: then "
                                        "'compare on prevalence' (skewed scores: humans agree on quality, not on which items are flawed).")
    consensus_min_humans: int = Field(1, ge=1, description="Human ratings an item needs to have a human consensus (judge vs "
                                      "consensus figures); 2 leaves out items rated by one human only.")
    max_excluded_share: float = Field(0.05, ge=0, le=1, description=(
        "Largest share of ratings excluded as invalid (no item id, unknown metric, score not a number or off the scale, "
        "bad length_bin) before the report warns at the top and `kasauti report` exits 2 (unless --allow-excluded)."))
    calibration_folds: int = Field(5, ge=2)
    calibration_min_items: int = Field(30, ge=2)
    calibration_min_items_language: int = Field(60, ge=2)
    escalation_target: float = Field(0.90, gt=0, lt=1, description="Agreement with the human consensus the judge must "
                                     "guarantee on the items it decides (trust-or-escalate thresholds in the report).")
    escalation_delta: float = Field(0.10, gt=0, lt=1, description="Allowed probability that the guarantee fails.")
    acceptable: dict[str, float] = Field(default_factory=dict, description="Metric -> the lowest human-scale score that "
                                         "counts as acceptable (share-acceptable estimates); default: the scale's top level.")
    model_families: dict[str, str] = Field(default_factory=dict, description="Judge or source model name -> model family "
                                           "(e.g. gpt-4: gpt); self-preference is reported for judges whose family is known.")
