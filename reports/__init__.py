"""Calibration report: human-human and human-judge agreement, judge calibration, HTML/JSON/CSV.

Entry points: :func:`build_report` (any long ratings table) and :func:`report_pariksha`
(straight from the PARIKSHA files); importers :func:`from_study`, :func:`read_long`,
:func:`from_pariksha`. Each is imported on first use, so ``import reports`` stays cheap.
"""

from importlib import import_module

_HOME = {"build_report": "build", "report_pariksha": "build", "ReportConfig": "config", "ImportReport": "ratings",
         "from_pariksha": "ratings", "from_study": "ratings", "judgments_to_long": "ratings", "prepare": "ratings",
         "read_long": "ratings"}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
