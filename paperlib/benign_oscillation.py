"""Feature-noise data, a two-layer ReLU^2 "CNN" and its SGD (Lu, Wu, Yang, Zou 2024, 2310.17074).

Data (the paper's Section 2, as far as it could be read): a label y = +-1 (Rademacher) and three patches
of dimension d,

* x^(1) = y u, the *strong* feature (norm ||u||), present in a fraction rho of the samples, 0 otherwise;
* x^(2) = y v, the *weak* feature (norm ||v|| <= 0.1 ||u||), present in every sample;
* x^(3) = xi ~ N(0, sigma_p^2 (I - e_1 e_1^T - e_2 e_2^T)), noise orthogonal to both features.

u = ||u|| e_1 and v = ||v|| e_2 (the initialisation is isotropic, so any orthogonal pair is
equivalent). Network: m neurons per output sign j = +1, -1 with fixed second layer +-1/m, each neuron
applied to every patch,

    f(W, x) = sum_j j (1/m) sum_r sum_p sigma(<w_{j,r}, x^(p)>),   sigma(z) = max(z, 0)^2,

and the per-sample loss l = (1 - y f)^2, trained by SGD with one uniformly drawn sample per step.
With these conventions the largest stable step of a fitted strong sample is m / (4 ||u||^2), the lower
end of the paper's large-learning-rate window [m/(4||u||^2), 2m/(5||u||^2)] (Assumption 3).

``W`` has shape (2, m, d): ``W[0]`` are the neurons of sign +1, ``W[1]`` those of sign -1.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

SIGNS = jnp.array([1.0, -1.0])  # output sign of W[0] and W[1]


class Features(NamedTuple):
    """The strong feature u, the weak feature v and the noise level sigma_p of the data model (Sec. 2)."""

    strong: jax.Array  # (d,) u
    weak: jax.Array  # (d,) v
    noise_std: float  # sigma_p


class Data(NamedTuple):
    """n samples of the feature-noise model (Sec. 2): patches, labels and the strong-feature mask."""

    x: jax.Array  # (n, 3, d) patches (strong, weak, noise)
    y: jax.Array  # (n,) labels +-1
    strong: jax.Array  # (n,) True where the strong feature is present


def features(d: int, strong_norm: float, weak_norm: float, noise_std: float) -> Features:
    """u = strong_norm e_1, v = weak_norm e_2 and the noise level sigma_p (d >= 3; paper Sec. 2).

    Args:
      d: patch dimension, >= 3 (two feature directions and the noise).
      strong_norm: ||u||.
      weak_norm: ||v|| (Assumption 3: <= 0.1 ||u||).
      noise_std: sigma_p, the per-coordinate standard deviation of the noise patch.

    Returns:
      ``Features`` with u and v of shape (d,) and ``noise_std``.
    """
    eye = jnp.eye(d)
    return Features(strong_norm * eye[0], weak_norm * eye[1], noise_std)


@partial(jax.jit, static_argnames=("n", "n_strong"))
def sample(key: jax.Array, feats: Features, n: int, n_strong: int) -> Data:
    """Draw n samples of the feature-noise model, exactly ``n_strong`` of them with the strong feature.

    Args:
      key: PRNG key.
      feats: the features u, v and the noise level.
      n: number of samples; n_strong: how many carry y u (positions uniformly at random).

    Returns:
      ``Data`` with x of shape (n, 3, d), labels y (n,) and the strong mask (n,).
    """
    k_y, k_s, k_xi = jax.random.split(key, 3)
    d = feats.strong.shape[0]
    y = jax.random.rademacher(k_y, (n,), dtype=feats.strong.dtype)
    strong = jax.random.permutation(k_s, jnp.arange(n) < n_strong)
    xi = feats.noise_std * jax.random.normal(k_xi, (n, d), feats.strong.dtype)
    xi = xi.at[:, :2].set(0.0)  # orthogonal to span(e_1, e_2) = span(u, v)
    x = jnp.stack([jnp.where(strong[:, None], y[:, None] * feats.strong, 0.0),
                   y[:, None] * feats.weak, xi], axis=1)
    return Data(x, y, strong)


@partial(jax.jit, static_argnames=("m", "d", "dtype"))
def init(key: jax.Array, m: int, d: int, sigma0: float, dtype: DTypeLike = jnp.float64) -> jax.Array:
    """Initial weights, i.i.d. N(0, sigma0^2) (the paper's small Gaussian initialisation, Sec. 2).

    Args:
      key: PRNG key.
      m: neurons per output sign.
      d: patch dimension.
      sigma0: initialisation standard deviation.
      dtype: dtype of the weights.

    Returns:
      (2, m, d) weights W; ``W[0]`` the neurons of sign +1, ``W[1]`` those of sign -1.
    """
    return sigma0 * jax.random.normal(key, (2, m, d), dtype)


def output(W: jax.Array, x: jax.Array) -> jax.Array:
    """Network output f(W, x) = sum_j j (1/m) sum_r sum_p sigma(<w_{j,r}, x^(p)>) (paper Sec. 2).

    Args:
      W: (2, m, d) weights.
      x: (3, d) patches (strong, weak, noise) of one sample.

    Returns:
      () scalar output.
    """
    m = W.shape[1]
    act = jnp.maximum(jnp.einsum("jrd,pd->jrp", W, x), 0.0) ** 2
    return jnp.dot(SIGNS, act.sum((1, 2))) / m


def sample_loss(W: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """The per-sample square loss (1 - y f(W, x))^2 (paper Sec. 2).

    Args:
      W: (2, m, d) weights.
      x: (3, d) patches of one sample.
      y: () label +-1.

    Returns:
      () scalar loss.
    """
    return (1.0 - y * output(W, x)) ** 2


outputs = jax.vmap(output, in_axes=(None, 0))  # (W, (n, 3, d)) -> (n,)


def accuracy(W: jax.Array, data: Data) -> jax.Array:
    """Fraction of samples with y f(W, x) > 0 (the test accuracy of the paper's Sec. 4.2 experiment).

    Args:
      W: (2, m, d) weights.
      data: ``Data`` with x (n, 3, d) and y (n,).

    Returns:
      () scalar accuracy in [0, 1].
    """
    return jnp.mean(data.y * outputs(W, data.x) > 0)


def coefficients(W: jax.Array, direction: jax.Array) -> jax.Array:
    """Feature coefficients j <w_{j,r}, direction> of every neuron (the quantities of Theorem 5 and
    Proposition 6 when direction is v).

    Args:
      W: (..., 2, m, d) weights.
      direction: (d,) feature direction, e.g. u or v.

    Returns:
      (..., 2, m) coefficients.
    """
    return SIGNS[:, None] * (W @ direction)


def loss_grad(W: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gradient of the per-sample loss in closed form, and the margin y f(W, x).

    grad_{w_{j,r}} l = -(4 / m) (1 - y f) y j sum_p max(<w_{j,r}, x^(p)>, 0) x^(p).

    Args:
      W: (2, m, d) weights.
      x: (3, d) patches of one sample.
      y: () label +-1.

    Returns:
      (gradient of shape (2, m, d), margin y f(W, x)).
    """
    m = W.shape[1]
    pre = jnp.maximum(jnp.einsum("jrd,pd->jrp", W, x), 0.0)  # (2, m, 3)
    margin = y * jnp.dot(SIGNS, (pre ** 2).sum((1, 2))) / m
    scale = -(4.0 / m) * (1.0 - margin) * y * SIGNS[:, None, None]
    return scale * jnp.einsum("jrp,pd->jrd", pre, x), margin


def sgd_step(W: jax.Array, x: jax.Array, y: jax.Array,
             eta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One SGD step on the sample (x, y): W - eta grad l(W; x, y).

    Args:
      W, x, y: as in :func:`loss_grad`.
      eta: () step size.

    Returns:
      (new W of shape (2, m, d), margin y f(W, x) before the step).
    """
    grad, margin = loss_grad(W, x, y)
    return W - eta * grad, margin


class Trace(NamedTuple):
    """What :func:`run_sgd` records: per-step margins and draws, per-record loss and coefficients."""

    margin: jax.Array  # (steps,) y_i f(x_i; W_t) of the sample drawn at step t (before the step)
    drawn: jax.Array  # (steps,) index i_t of that sample
    loss: jax.Array  # (records,) mean training loss at every record
    strong_coef: jax.Array  # (records, 2, m) j <w_{j,r}, u>
    weak_coef: jax.Array  # (records, 2, m) j <w_{j,r}, v>


@partial(jax.jit, static_argnames=("steps", "record_every"))
def run_sgd(W0: jax.Array, data: Data, feats: Features, eta: ArrayLike, key: jax.Array,
            steps: int, record_every: int) -> tuple[jax.Array, Trace]:
    """SGD with one uniformly drawn sample per step (with replacement), in a ``lax.scan``.

    Args:
      W0: (2, m, d) start; data: the n training samples; feats: u and v for the coefficients.
      eta: step size; key: PRNG key of the sample indices.
      steps: number of SGD steps, a multiple of record_every; record_every: steps between records
        (the first record is the start, so there are steps // record_every records).

    Returns:
      The final weights and a ``Trace``.
    """
    n = data.y.shape[0]
    drawn = jax.random.randint(key, (steps // record_every, record_every), 0, n)

    def block(W, idx):
        rec = (jnp.mean((1.0 - data.y * outputs(W, data.x)) ** 2),
               coefficients(W, feats.strong), coefficients(W, feats.weak))
        W, margins = jax.lax.scan(lambda w, i: sgd_step(w, data.x[i], data.y[i], eta), W, idx)
        return W, (margins, rec)

    W, (margins, (loss, s_coef, w_coef)) = jax.lax.scan(block, W0, drawn)
    return W, Trace(margins.reshape(-1), drawn.reshape(-1), loss, s_coef, w_coef)


@partial(jax.jit, static_argnames=("steps", "record_every"))
def run_many(W0: jax.Array, data: Data, feats: Features, eta: jax.Array, key: jax.Array,
             steps: int, record_every: int) -> tuple[jax.Array, Trace]:
    """:func:`run_sgd` vmapped over runs: W0, data, eta and key carry a leading run axis (R, ...).

    Args:
      W0: (R, 2, m, d) starts.
      data: ``Data`` whose fields carry the run axis: x (R, n, 3, d), y and strong (R, n).
      feats: u and v, shared by all runs.
      eta: (R,) step sizes.
      key: (R,) PRNG keys (one per run) of the sample indices.
      steps, record_every: as in :func:`run_sgd`.

    Returns:
      Final weights (R, 2, m, d) and a ``Trace`` whose fields carry the leading run axis.
    """
    one = partial(run_sgd, feats=feats, steps=steps, record_every=record_every)
    return jax.vmap(lambda w, dat, e, k: one(w, dat, eta=e, key=k))(W0, data, eta, key)
