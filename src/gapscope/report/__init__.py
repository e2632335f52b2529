"""The self-contained HTML report: findings first, then the matrix, the audit and the spec."""

from gapscope.report.render import render_report

__all__ = ["render_report"]
