"""Run reports (HTML + Markdown) shared by ``gantl train``, experiments and ``gantl demo``."""

from gantl.reporting.report import ReportInput, write_report
from gantl.reporting.runs import RunSummary, read_run

__all__ = ["ReportInput", "RunSummary", "read_run", "write_report"]
