"""Small statistics shared by the notebooks: means with standard errors, variances, log-log slopes."""

from __future__ import annotations

import math

import numpy as np


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def mean_and_se(samples, axis=0):
    """Sample mean along ``axis`` and its standard error s / sqrt(n)."""
    s = np.asarray(samples)
    return s.mean(axis), s.std(axis, ddof=1) / math.sqrt(s.shape[axis])


def variance_and_se(samples):
    """Sample variance and its distribution-free standard error sqrt((m4 - s^4 (n-3)/(n-1)) / n)."""
    s = np.asarray(samples, float)
    n = s.size
    d = s - s.mean()
    var = d @ d / (n - 1)
    m4 = np.mean(d ** 4)
    return var, math.sqrt(max(m4 - var ** 2 * (n - 3) / (n - 1), 0.0) / n)
