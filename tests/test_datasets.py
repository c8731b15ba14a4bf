"""Tests for paperlib.datasets (shapes, labels, determinism, planted margin)."""

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from paperlib import datasets  # noqa: E402
from paperlib.datasets import digits_imbalanced_pair, digits_pair, planted_margin  # noqa: E402
from paperlib.perceptron import margin_certificate, signed_samples  # noqa: E402


def test_digits_pair_matches_sklearn():
    A, y = digits_pair(3, 8)
    X, t = load_digits(return_X_y=True)
    assert A.dtype == np.float64 and A.shape == (np.sum((t == 3) | (t == 8)), 64)
    assert np.sum(y == 1) == np.sum(t == 3) and np.sum(y == -1) == np.sum(t == 8)
    np.testing.assert_array_equal(A[y == 1], X[t == 3] / 16.0)
    assert A.min() >= 0.0 and A.max() <= 1.0
    np.testing.assert_array_equal(digits_pair(3, 8, scale=1.0)[0], X[(t == 3) | (t == 8)])
    with pytest.raises(ValueError):
        digits_pair(3, 3)
    with pytest.raises(ValueError):
        digits_pair(3, 10)


def test_digits_imbalanced_pair():
    A_full, y_full = digits_pair(1, 7)
    n_b = np.sum(y_full == -1)
    A, y = digits_imbalanced_pair(1, 7, 0.1, 0)
    assert np.sum(y == 1) == np.sum(y_full == 1) and np.sum(y == -1) == round(0.1 * n_b)
    # kept rows are rows of the balanced pair, in their original order
    rows = {r.tobytes(): i for i, r in enumerate(A_full)}
    idx = [rows[r.tobytes()] for r in A]
    assert idx == sorted(idx)
    A2, y2 = digits_imbalanced_pair(1, 7, 0.1, 0)
    np.testing.assert_array_equal(A, A2)
    A3, _ = digits_imbalanced_pair(1, 7, 0.1, 1)
    assert not np.array_equal(A, A3)
    Ak, yk = digits_imbalanced_pair(1, 7, 0.1, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(Ak, digits_imbalanced_pair(1, 7, 0.1, jax.random.PRNGKey(0))[0])
    assert np.sum(yk == -1) == round(0.1 * n_b)
    assert np.sum(digits_imbalanced_pair(1, 7, 1e-6, 0)[1] == -1) == 1
    with pytest.raises(ValueError):
        digits_imbalanced_pair(1, 7, 0.0, 0)


def test_planted_margin():
    A, y = planted_margin(300, 20, 0.05, seed=0)
    assert A.shape == (300, 20) and A.dtype == np.float64 and set(np.unique(y)) == {-1.0, 1.0}
    np.testing.assert_array_equal(A, planted_margin(300, 20, 0.05, seed=0)[0])
    assert not np.array_equal(A, planted_margin(300, 20, 0.05, seed=1)[0])
    assert 0.8 < np.mean(np.sum(A * A, axis=1)) < 1.2  # x ~ N(0, I/d)
    mc = margin_certificate(signed_samples(A, y))
    assert mc.separable and mc.mu_upper >= mc.mu_lower >= 0.05 - 1e-12  # mu >= planted margin
    with pytest.raises(ValueError):
        planted_margin(10, 4, 5.0, seed=0)


def test_digits_split_standardizes_with_train_statistics():
    Xtr, ytr, Xte, yte = datasets.digits_split(400, 0)
    assert Xtr.shape == (1397, 64) and Xte.shape == (400, 64)
    np.testing.assert_allclose(Xtr.mean(0), 0.0, atol=1e-12)
    with pytest.raises(ValueError):
        datasets.digits_split(0, 0)


def test_digits_folds_are_disjoint_and_standardized():
    Xtr, ytr, Xte, yte = datasets.digits_folds(3, 0)
    assert Xtr.shape == (3, 1198, 64) and Xte.shape == (3, 599, 64) and ytr.shape == (3, 1198)
    np.testing.assert_allclose(Xtr.mean(1), 0.0, atol=1e-12)
    _, y = load_digits(return_X_y=True)
    counts = np.bincount(yte.ravel(), minlength=10)  # 3 x 599 = 1797: the test folds cover the data once
    assert np.array_equal(counts, np.bincount(y, minlength=10))
    with pytest.raises(ValueError):
        datasets.digits_folds(1, 0)
