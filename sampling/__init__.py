"""Data intake, validation and stratified length-binned sampling."""

import lazy_loader

# each name is imported from its module on first use: importing the package (or its config) stays light
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "config": ["Columns", "DataSource", "Filters", "SamplingConfig"],
    "intake": ["Population", "scan"],
    "languages": ["UnknownLanguage", "display_name", "expected_script", "normalise"],
    "lengths": ["grapheme_length", "grapheme_lengths"],
    "sampler": ["INTAKE_FILE", "SAMPLE_COLUMNS", "SampleResult", "allocate", "draw", "length_bins", "sample_study", "save"],
    "sources": ["SourceError"],
})
