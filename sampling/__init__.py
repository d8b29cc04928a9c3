"""Data intake, validation and stratified length-binned sampling."""

from .config import Columns, DataSource, Filters, SamplingConfig
from .intake import Population, scan
from .languages import UnknownLanguage, display_name, expected_script, normalise
from .lengths import grapheme_length, grapheme_lengths
from .sampler import INTAKE_FILE, SAMPLE_COLUMNS, SampleResult, allocate, draw, length_bins, sample_study, save
from .sources import SourceError

__all__ = [
    "INTAKE_FILE", "SAMPLE_COLUMNS", "Columns", "DataSource", "Filters", "Population", "SampleResult", "SamplingConfig",
    "SourceError", "UnknownLanguage", "allocate", "display_name", "draw", "expected_script",
    "grapheme_length", "grapheme_lengths", "length_bins", "normalise", "sample_study", "save", "scan",
]
