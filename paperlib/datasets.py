"""Small offline datasets that stand in for image data that cannot be downloaded here.

Binary classification sets ``(A, y)`` (numpy float64, y in {-1, +1}) for CIFAR-10, FashionMNIST,
EuroSAT and MNIST subsets: sklearn's bundled 8x8 digits for real quantised-pixel data, and a
planted-margin Gaussian generator whose margin and shape (n, d) can be set to mimic a paper's 2-class
subsets. The 10-class digits as train/test splits or cross-validation folds (proxy for CIFAR-100 style
multi-class training), and ``moving_digits``, video sequences in the style of Stochastic Moving MNIST.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from sklearn.datasets import load_digits


def _digits_subset(a: int, b: int, scale: float):
    if a == b or not {a, b} <= set(range(10)):
        raise ValueError(f"need two different digits in 0..9, got a={a}, b={b}")
    X, target = load_digits(return_X_y=True)
    keep = (target == a) | (target == b)
    return X[keep].astype(np.float64) / scale, np.where(target[keep] == a, 1.0, -1.0)


def digits_pair(a: int, b: int, scale: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """Digit a (label +1) vs digit b (label -1) from sklearn's 8x8 digits, pixels divided by ``scale``.

    Proxy for the paper's balanced 2-class image subsets (e.g. 3 vs 8: n = 357, d = 64).

    Args:
      a, b: two different digits in 0..9.
      scale: pixels (0..16) are divided by it.

    Returns:
      ``A`` (n, 64) float64 and ``y`` (n,) in {-1, +1}, in sklearn's sample order.
    """
    return _digits_subset(a, b, scale)


def digits_imbalanced_pair(
    a: int, b: int, keep_fraction: float, key_or_seed: int | jax.Array, scale: float = 16.0
) -> tuple[np.ndarray, np.ndarray]:
    """``digits_pair(a, b)`` keeping a random ``keep_fraction`` of class b (at least one sample).

    Proxy for the paper's imbalanced datasets (Fig. 7, Table 1), whose construction is not given in
    the main text.

    Args:
      a, b: two different digits in 0..9 (b is the minority class).
      keep_fraction: the share of class b kept, in (0, 1].
      key_or_seed: an int seed (numpy) or a JAX PRNG key; the result is deterministic given it.
      scale: pixels (0..16) are divided by it.

    Returns:
      ``A`` (n, 64) float64 and ``y`` (n,) in {-1, +1}, in the original sample order.
    """
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    A, y = _digits_subset(a, b, scale)
    idx_b = np.flatnonzero(y < 0)
    k = max(1, int(round(keep_fraction * idx_b.size)))
    if isinstance(key_or_seed, (int, np.integer)):
        perm = np.random.default_rng(int(key_or_seed)).permutation(idx_b.size)
    else:
        perm = np.asarray(jax.random.permutation(key_or_seed, idx_b.size))
    keep = np.sort(np.concatenate([np.flatnonzero(y > 0), idx_b[perm[:k]]]))
    return A[keep], y[keep]


def planted_margin(n: int, d: int, margin: float, seed: int, offset: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian data with a planted separating direction and margin at least ``margin``.

    x ~ N(0, I/d) (so ||x|| is about 1), w* a random unit vector, samples with |w*.x| < margin rejected,
    y = sign(w*.x); hence mu >= margin. ``offset`` > 0 adds one shared vector of that norm, orthogonal
    to w*, to every sample: labels and margins are unchanged, but like image pixels (non-negative, with a
    large common mean) the data become ill-conditioned and GD slow. Stand-in for the paper's 5,000-sample
    image sets at their dimension (d = 3072 for CIFAR-10, 784 for (Fashion)MNIST). Rejection is done in
    vectorised batches.

    Args:
      n, d: samples and dimension (n >= 1, d >= 2).
      margin: the smallest |w*.x| kept (>= 0; the acceptance rate must stay above 1e-6).
      seed: numpy seed of w*, the samples and the shared vector.
      offset: norm of the shared vector added to every sample (>= 0).

    Returns:
      ``A`` (n, d) float64 and ``y`` (n,) in {-1, +1}.
    """
    if n < 1 or d < 2 or margin < 0 or offset < 0:
        raise ValueError(f"need n >= 1, d >= 2, margin >= 0, offset >= 0; got n={n}, d={d}, "
                         f"margin={margin}, offset={offset}")
    accept = math.erfc(margin * math.sqrt(d / 2.0))  # P(|N(0, 1/d)| >= margin)
    if accept < 1e-6:
        raise ValueError(f"margin {margin} is too large for d={d}: acceptance rate {accept:.2e}")
    rng = np.random.default_rng(seed)
    w_star = rng.standard_normal(d)
    w_star /= np.linalg.norm(w_star)
    max_rows = max(1, 2**24 // d)  # keep each batch at most ~128 MB
    chunks, have = [], 0
    while have < n:
        rows = min(max_rows, int(1.1 * (n - have) / accept) + 16)
        X = rng.standard_normal((rows, d)) / math.sqrt(d)
        X = X[np.abs(X @ w_star) >= margin]
        chunks.append(X)
        have += X.shape[0]
    A = np.concatenate(chunks)[:n]
    y = np.where(A @ w_star > 0, 1.0, -1.0)
    shared = rng.standard_normal(d)
    shared -= (shared @ w_star) * w_star
    return A + offset * shared / np.linalg.norm(shared), y


def moving_digits(num_sequences: int, num_frames: int, canvas: int, seed: int, num_digits: int = 1,
                  zoom: int = 2, max_speed: int = 2) -> np.ndarray:
    """Stochastic moving digits: sklearn's 8x8 digits, upsampled ``zoom`` times (nearest neighbour),
    moving on a ``canvas`` x ``canvas`` frame with integer velocities in [-max_speed, max_speed] px/frame;
    a digit that would leave the frame is reflected and draws a new random velocity (the stochastic
    bounce of Denton & Fergus's Stochastic Moving MNIST). Overlapping digits add, clipped at 1.

    Proxy for Stochastic Moving MNIST (Denton & Fergus 2018), built from the bundled digits.

    Args:
      num_sequences, num_frames: clips and frames per clip.
      canvas: frame side in pixels (> 8 * zoom).
      seed: numpy seed of the digits, positions and velocities.
      num_digits: digits per clip.
      zoom: nearest-neighbour upsampling of the 8x8 sprites.
      max_speed: largest velocity component, px/frame.

    Returns:
      float64 (num_sequences, num_frames, canvas, canvas) in [0, 1].
    """
    size = 8 * zoom
    if min(num_sequences, num_frames, num_digits, zoom, max_speed) < 1 or canvas <= size:
        raise ValueError(f"need positive counts, zoom, max_speed and canvas > 8*zoom = {size}; got "
                         f"num_sequences={num_sequences}, num_frames={num_frames}, canvas={canvas}, "
                         f"num_digits={num_digits}, zoom={zoom}, max_speed={max_speed}")
    images = load_digits().images / 16.0
    rng = np.random.default_rng(seed)
    video = np.zeros((num_sequences, num_frames, canvas, canvas))
    room = canvas - size
    for n in range(num_sequences):
        for _ in range(num_digits):
            sprite = np.kron(images[rng.integers(len(images))], np.ones((zoom, zoom)))
            pos = rng.integers(0, room + 1, size=2)
            vel = rng.integers(-max_speed, max_speed + 1, size=2)
            for t in range(num_frames):
                r, c = pos
                video[n, t, r:r + size, c:c + size] += sprite
                new = pos + vel
                for axis in range(2):
                    if not 0 <= new[axis] <= room:
                        speed = rng.integers(1, max_speed + 1)
                        vel[axis] = speed if new[axis] < 0 else -speed
                        new[axis] = min(max(pos[axis] + vel[axis], 0), room)
                pos = new
    return np.minimum(video, 1.0)


def digits_split(test_size: int, seed: int, standardize: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Multi-class proxy: scikit-learn's 8x8 digits (1797 x 64, 10 classes), a seeded train/test split.

    Pixels / 16, then (``standardize``) centred and scaled per pixel with the training mean and std
    (constant pixels keep scale 1), as image pipelines normalise channels.

    Args:
      test_size: test samples, in (0, 1797).
      seed: numpy seed of the split.
      standardize: whether to standardise with the training statistics.

    Returns:
      ``X_train`` (n_train, 64), ``y_train`` (n_train,) int32, ``X_test`` (test_size, 64),
      ``y_test`` (test_size,) int32.
    """
    X, y = load_digits(return_X_y=True)
    if not 0 < test_size < len(y):
        raise ValueError(f"test_size must be in (0, {len(y)}), got {test_size}")
    perm = np.random.default_rng(seed).permutation(len(y))
    X = X.astype(np.float64) / 16.0
    test, train = perm[:test_size], perm[test_size:]
    if standardize:
        X_train, X_test = _standardize(X[train], X[test])
        return X_train, y[train].astype(np.int32), X_test, y[test].astype(np.int32)
    return X[train], y[train].astype(np.int32), X[test], y[test].astype(np.int32)


def _standardize(X_train, X_other):
    mean, std = X_train.mean(0), X_train.std(0)
    scale = np.where(std > 0, std, 1.0)
    return (X_train - mean) / scale, (X_other - mean) / scale


def digits_folds(num_folds: int, seed: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """k-fold cross-validation splits of the digits, stacked so the folds can be vmapped.

    A seeded permutation is cut into ``num_folds`` disjoint test folds of floor(1797 / k) samples (the
    remainder always trains); fold f trains on everything else. Pixels / 16, standardised with each
    fold's training mean and std.

    Args:
      num_folds: k, in [2, 898].
      seed: numpy seed of the permutation.

    Returns:
      ``X_train`` (k, n_train, 64), ``y_train`` (k, n_train) int32, ``X_test`` (k, n_test, 64),
      ``y_test`` (k, n_test) int32.
    """
    X, y = load_digits(return_X_y=True)
    if not 2 <= num_folds <= len(y) // 2:
        raise ValueError(f"num_folds must be in [2, {len(y) // 2}], got {num_folds}")
    perm = np.random.default_rng(seed).permutation(len(y))
    X = X.astype(np.float64) / 16.0
    n_test = len(y) // num_folds
    out = [], [], [], []
    for f in range(num_folds):
        test = perm[f * n_test:(f + 1) * n_test]
        train = np.concatenate([perm[:f * n_test], perm[(f + 1) * n_test:]])
        X_train, X_test = _standardize(X[train], X[test])
        for lst, arr in zip(out, (X_train, y[train].astype(np.int32), X_test, y[test].astype(np.int32))):
            lst.append(arr)
    return tuple(np.stack(a) for a in out)
