"""Calibration report: human-human and human-judge agreement, judge calibration, HTML/JSON/CSV.

Entry points: :func:`report_study` (a study directory), :func:`build_report` (any long ratings table) and :func:`report_pariksha`
(straight from the PARIKSHA files); importers :func:`from_study`, :func:`read_long`,
:func:`from_pariksha`. Each is imported on first use, so ``import reports`` stays cheap.
"""

import lazy_loader

# each name is imported from its module on first use: importing the package (or its config) stays light
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "build": ["PARIKSHA_FAMILIES", "REPORT_DIR", "build_report", "pariksha_comparisons", "report_pariksha", "report_study"],
    "config": ["ReportConfig"],
    "ratings": ["ImportReport", "from_pariksha", "from_study", "judgments_to_long", "prepare", "read_long"],
})
