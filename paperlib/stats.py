"""Small statistics shared by the notebooks and the claim registry: means with standard errors, variances,
log-log slopes with their standard errors."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def loglog_slope(x: ArrayLike, y: ArrayLike) -> float:
    """Least-squares slope of log y against log x.

    Args:
      x, y: (n,) positive values, n >= 2.

    Returns:
      The slope, a float.
    """
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def mean_and_se(samples: ArrayLike, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean along ``axis`` and its standard error s / sqrt(n) (s with ddof = 1).

    Args:
      samples: array whose ``axis`` runs over n >= 2 independent draws.
      axis: the axis of the draws.

    Returns:
      (mean, s.e.), each of the shape of ``samples`` without ``axis``.
    """
    s = np.asarray(samples)
    return s.mean(axis), s.std(axis, ddof=1) / math.sqrt(s.shape[axis])


def variance_and_se(samples: ArrayLike) -> tuple[float, float]:
    """Sample variance s^2 of (n,) draws and its distribution-free standard error
    sqrt((m4 - s^4 (n-3)/(n-1)) / n), m4 the fourth central sample moment.

    Args:
      samples: (n,) independent draws, n >= 2.

    Returns:
      (s^2, its standard error), floats.
    """
    s = np.asarray(samples, float)
    n = s.size
    d = s - s.mean()
    var = d @ d / (n - 1)
    m4 = np.mean(d ** 4)
    return var, math.sqrt(max(m4 - var ** 2 * (n - 3) / (n - 1), 0.0) / n)


def loglog_slope_and_se(x: ArrayLike, means: ArrayLike, ses: ArrayLike,
                        power: float = 1.0) -> tuple[float, float]:
    """Least-squares slope of ``power * log(means)`` against ``log(x)`` and its delta-method standard
    error ``sqrt(sum_i c_i^2 power^2 se_i^2 / means_i^2)``, ``c_i`` the least-squares weights. The means
    are positive and independent across ``x``, so the terms add.

    Args:
      x: (n,) positive abscissae.
      means, ses: (n,) positive means at ``x`` and their standard errors.
      power: exponent applied to the means (0.5 for a root-mean-square of squared deviations).

    Returns:
      (slope, its standard error), floats.
    """
    lx = np.log(np.asarray(x, float))
    c = (lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2)
    means, ses = np.asarray(means, float), np.asarray(ses, float)
    return float(c @ (power * np.log(means))), float(math.sqrt(np.sum((c * power * ses / means) ** 2)))


def loglog_slope_over_runs(x: ArrayLike, samples: list[ArrayLike],
                           power: float = 1.0) -> tuple[float, float, int]:
    """:func:`loglog_slope_and_se` of per-run values: ``samples[i]`` holds one value per independent run
    (network, seed) at ``x[i]``; ``power = 0.5`` gives the slope of a root-mean-square of squared
    deviations.

    Args:
      x: (n,) positive abscissae.
      samples: n sequences of per-run values (at least 2 runs each, lengths may differ).
      power: as in :func:`loglog_slope_and_se`.

    Returns:
      (slope, its s.e., fewest runs at any x).
    """
    means, ses = zip(*(mean_and_se(np.asarray(s, float)) for s in samples))
    return (*loglog_slope_and_se(x, means, ses, power), min(len(s) for s in samples))
