"""Plots and reports of experiments."""

from eglpp.report.curves import plot_learning_curves

__all__ = ["plot_learning_curves"]
