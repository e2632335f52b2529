"""Evaluation: metrics with explicit degenerate-set behaviour, bootstrap CIs, the cross-domain matrix."""

from gapscope.eval.bootstrap import BootstrapCI, bootstrap_cis
from gapscope.eval.matrix import (MatrixEntry, evaluate_cell, read_matrix, read_matrix_csv,
                                  summarise, write_matrix)
from gapscope.eval.metrics import METRIC_NAMES, MetricSet, choose_threshold, compute_metrics

__all__ = [
    "METRIC_NAMES", "BootstrapCI", "MatrixEntry", "MetricSet", "bootstrap_cis", "choose_threshold",
    "compute_metrics", "evaluate_cell", "read_matrix", "read_matrix_csv", "summarise", "write_matrix",
]
