"""Calibration report: human-human and human-judge agreement, judge calibration, HTML/JSON/CSV.

Entry points: :func:`report_study` (a study directory), :func:`build_report` (any long ratings table) and :func:`report_pariksha`
(straight from the PARIKSHA files); importers :func:`from_study`, :func:`read_long`,
:func:`from_pariksha`.
"""

from .build import REPORT_DIR, build_report, report_pariksha, report_study
from .config import ReportConfig
from .ratings import ImportReport, from_pariksha, from_study, judgments_to_long, prepare, read_long

__all__ = ["REPORT_DIR", "ImportReport", "ReportConfig", "build_report", "from_pariksha", "from_study", "judgments_to_long", "prepare", "read_long", "report_pariksha", "report_study"]
