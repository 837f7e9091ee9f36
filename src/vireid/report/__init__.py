"""Rank reports: a self-contained HTML page, ranks.csv and plots."""

from .html import write_report

__all__ = ["write_report"]
