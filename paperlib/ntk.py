"""Neural Tangent Kernel (Jacot, Gabriel, Hongler 2018): finite networks and their infinite-width limit.

Conventions (the paper's, Section 2):

* ``depth`` = L = number of weight layers (L = 4 means three hidden layers), widths n_0 ... n_L.
* NTK parametrisation: every parameter is N(0, 1); ``a~(l+1) = W(l) a(l) / sqrt(n_l) + beta * b(l)``,
  ``a(l) = sigma(a~(l))``, output ``f = a~(L)`` (no nonlinearity on the output). ``W(l)`` is stored
  with shape ``(n_{l+1}, n_l)``.
* The limiting kernels on a pair of inputs (Prop. 1, Thm 1)::

      Sigma(1)(x, x')   = x.x' / n_0 + beta^2,                     Theta(1) = Sigma(1)
      Sigma(l+1)(x, x') = E[sigma(u) sigma(v)] + beta^2,           (u, v) ~ N(0, Sigma(l) on {x, x'})
      Theta(l+1)        = Theta(l) * E[sigma'(u) sigma'(v)] + Sigma(l+1)

* Least squares ``C = (1/2N) sum_i (f(x_i) - y_i)^2``, gradient descent ``theta -= lr * grad C``;
  time ``t = lr * steps``. Kernel gradient flow on the data: ``u_t = y + exp(-t K/N) (u_0 - y)``.

Everything is a pure function of arrays (and an explicit ``jax.random`` key); shapes follow the
convention ``x: (N, n_0)``. Float64 is used when ``jax_enable_x64`` is on and the inputs are float64.
"""

from __future__ import annotations

import math
from functools import partial
from collections.abc import Sequence
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike
from jax.scipy.special import erf

# ----------------------------------------------------------------------------- nonlinearities


class Nonlinearity(NamedTuple):
    """sigma, its derivative, and (when it is positively homogeneous, sigma(r z) = r^k sigma(z) for
    r > 0) its degree k; ``polynomial`` marks the polynomial ones (Prop. 2 excludes them)."""
    fn: Callable
    grad: Callable
    homogeneous_degree: int | None
    polynomial: bool


def _relu_grad(z):
    return (z > 0).astype(z.dtype)


NONLINEARITIES: dict[str, Nonlinearity] = {
    "relu": Nonlinearity(lambda z: jnp.maximum(z, 0), _relu_grad, 1, False),
    "erf": Nonlinearity(erf, lambda z: 2 / math.sqrt(math.pi) * jnp.exp(-z * z), None, False),
    "tanh": Nonlinearity(jnp.tanh, lambda z: 1 - jnp.tanh(z) ** 2, None, False),
    "softplus": Nonlinearity(jax.nn.softplus, jax.nn.sigmoid, None, False),
    "identity": Nonlinearity(lambda z: z, jnp.ones_like, 1, True),
    "quadratic": Nonlinearity(lambda z: z * z, lambda z: 2 * z, 2, True),
}

CLOSED_FORMS = ("relu", "erf", "identity", "quadratic")


def nonlinearity(name: str) -> Nonlinearity:
    """The activation sigma called ``name`` (a key of :data:`NONLINEARITIES`; Section 2).

    Args:
      name: relu, erf, tanh, softplus, identity or quadratic.

    Returns:
      Its :class:`Nonlinearity` (sigma, sigma', homogeneity degree, polynomial flag).
    """
    try:
        return NONLINEARITIES[name]
    except KeyError:
        raise ValueError(f"unknown nonlinearity {name!r}; choose one of {sorted(NONLINEARITIES)}") from None


# ----------------------------------------------------------------------------- 2-D Gaussian expectations
# All of them take the entries of the 2x2 covariance [[a, c], [c, b]] (broadcastable arrays) and
# return (E[sigma(u) sigma(v)], E[sigma'(u) sigma'(v)]).


def closed_form_expectations(name: str, a: ArrayLike, b: ArrayLike, c: ArrayLike
                             ) -> tuple[jax.Array, jax.Array]:
    """The 2-D Gaussian expectations of the recursions of Prop. 1 and Thm 1 in closed form: ReLU
    (arc-cosine kernels of degree 1 and 0, no factor 2), erf, identity, z^2.

    Args:
      name: relu, erf, identity or quadratic.
      a, b, c: the covariance [[a, c], [c, b]] of (u, v), broadcastable arrays.

    Returns:
      (E[sigma(u) sigma(v)], E[sigma'(u) sigma'(v)]), each of the broadcast shape.
    """
    if name == "relu":
        # angle theta between the inputs from sqrt(ab) (sin, cos) = (sqrt(ab - c^2), c): no division,
        # no clipping, and arctan2 is cheaper than arccos; ab - c^2 is snapped like the quadrature's
        sin_part = jnp.sqrt(_det2(a, b, c))
        theta = jnp.where(a * b > 0, jnp.arctan2(sin_part, c), jnp.pi / 2)
        e = (sin_part + (jnp.pi - theta) * c) / (2 * jnp.pi)
        return e, (jnp.pi - theta) / (2 * jnp.pi)
    if name == "erf":
        d = (1 + 2 * a) * (1 + 2 * b)
        e = 2 / jnp.pi * jnp.arcsin(jnp.clip(2 * c / jnp.sqrt(d), -1.0, 1.0))
        return e, 4 / jnp.pi / jnp.sqrt(d - 4 * c * c)
    if name == "identity":
        return c + 0 * (a + b), jnp.ones_like(c + 0 * (a + b))
    if name == "quadratic":
        return a * b + 2 * c * c, 4 * c + 0 * (a + b)
    raise ValueError(f"no closed form for {name!r}; closed forms exist for {CLOSED_FORMS}")


def _det2(a, b, c):
    """ab - c^2, set to 0 when |rho| is within 16 ulp of 1: below that the angle between the two
    inputs is not resolved in float64 (arccos and sqrt turn a 1e-16 error in rho into 1e-8), and a
    pair of identical points must come out exactly collinear in every method."""
    ab = a * b
    return jnp.where(c * c >= ab * (1 - 32 * jnp.finfo(jnp.result_type(ab)).eps), 0.0, ab - c * c)


def _cholesky2(a, b, c):
    l11 = jnp.sqrt(a)
    l21 = jnp.where(l11 > 0, c / jnp.where(l11 > 0, l11, 1.0), 0.0)
    l22 = jnp.sqrt(_det2(a, b, c) / jnp.where(a > 0, a, 1.0))
    return l11, l21, l22


def gauss_hermite_expectations(name: str, a: ArrayLike, b: ArrayLike, c: ArrayLike,
                               deg: int = 64) -> tuple[jax.Array, jax.Array]:
    """The expectations of :func:`closed_form_expectations` (Prop. 1, Thm 1) by tensor-product
    Gauss-Hermite quadrature (probabilists' weight) on the Cholesky factor: u = l11 z1,
    v = l21 z1 + l22 z2. Spectrally accurate for smooth sigma; slow for kinks.

    Args:
      name: any key of :data:`NONLINEARITIES`.
      a, b, c: the covariance [[a, c], [c, b]], broadcastable arrays.
      deg: nodes per axis.

    Returns:
      (E[sigma(u) sigma(v)], E[sigma'(u) sigma'(v)]), each of the broadcast shape.
    """
    nl = nonlinearity(name)
    z, w = np.polynomial.hermite_e.hermegauss(deg)
    w = w / w.sum()
    z1, z2 = (jnp.asarray(t) for t in np.meshgrid(z, z, indexing="ij"))
    ww = jnp.asarray(np.outer(w, w))
    l11, l21, l22 = (t[..., None, None] for t in _cholesky2(a, b, c))
    u = l11 * z1
    v = l21 * z1 + l22 * z2
    e = jnp.sum(ww * nl.fn(u) * nl.fn(v), axis=(-2, -1))
    ed = jnp.sum(ww * nl.grad(u) * nl.grad(v), axis=(-2, -1))
    return e, ed


def polar_expectations(name: str, a: ArrayLike, b: ArrayLike, c: ArrayLike,
                       nodes: int = 16) -> tuple[jax.Array, jax.Array]:
    """2-D quadrature for a positively homogeneous sigma of degree k (ReLU, identity, z^2):
    with z = r (cos phi, sin phi), E[g(u, v)] = E[r^(2k)] * mean_phi g(l1.e_phi, l2.e_phi), since r
    and phi are independent (r^2 ~ chi^2_2, E[r^(2k)] = 2^k k!). The angular integral is split at the
    four angles where u or v changes sign (the kinks) and done by Gauss-Legendre on each piece, so
    it is exact to rounding for ReLU, unlike Gauss-Hermite.

    Args:
      name: a positively homogeneous sigma (relu, identity, quadratic).
      a, b, c: the covariance [[a, c], [c, b]], broadcastable arrays.
      nodes: Gauss-Legendre nodes per piece of the angular integral.

    Returns:
      (E[sigma(u) sigma(v)], E[sigma'(u) sigma'(v)]), each of the broadcast shape.
    """
    nl = nonlinearity(name)
    k = nl.homogeneous_degree
    if k is None:
        raise ValueError(f"{name!r} is not positively homogeneous; use gauss_hermite_expectations")
    l11, l21, l22 = _cholesky2(a, b, c)
    psi = jnp.arctan2(l22, l21)  # l21 cos(phi) + l22 sin(phi) = R cos(phi - psi)
    two_pi = 2 * jnp.pi
    kinks = jnp.stack([jnp.full_like(psi, jnp.pi / 2), jnp.full_like(psi, 3 * jnp.pi / 2),
                       jnp.mod(psi + jnp.pi / 2, two_pi), jnp.mod(psi - jnp.pi / 2, two_pi)], -1)
    edges = jnp.concatenate([jnp.zeros_like(psi)[..., None], jnp.sort(kinks, -1),
                             jnp.full_like(psi, two_pi)[..., None]], -1)
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]            # (..., 5, 1)
    x, w = np.polynomial.legendre.leggauss(nodes)
    phi = 0.5 * (hi + lo) + 0.5 * (hi - lo) * jnp.asarray(x)         # (..., 5, nodes)
    wt = 0.5 * (hi - lo) * jnp.asarray(w) / two_pi
    u = l11[..., None, None] * jnp.cos(phi)
    v = l21[..., None, None] * jnp.cos(phi) + l22[..., None, None] * jnp.sin(phi)
    mean_ff = jnp.sum(wt * nl.fn(u) * nl.fn(v), axis=(-2, -1))
    mean_dd = jnp.sum(wt * nl.grad(u) * nl.grad(v), axis=(-2, -1))
    return mean_ff * (2.0 ** k * math.factorial(k)), mean_dd * (2.0 ** (k - 1) * math.factorial(k - 1))


def expectations(name: str, a: ArrayLike, b: ArrayLike, c: ArrayLike, method: str = "closed",
                 deg: int = 64) -> tuple[jax.Array, jax.Array]:
    """The 2-D Gaussian expectations of Prop. 1 / Thm 1 by ``method``: ``closed`` (closed form),
    ``quadrature`` (polar quadrature for homogeneous sigma, Gauss-Hermite otherwise),
    ``gauss_hermite`` (always Gauss-Hermite, ``deg`` nodes per axis).

    Args:
      name: the nonlinearity.
      a, b, c: the covariance [[a, c], [c, b]], broadcastable arrays.

    Returns:
      (E[sigma(u) sigma(v)], E[sigma'(u) sigma'(v)]), each of the broadcast shape.
    """
    if method == "closed":
        return closed_form_expectations(name, a, b, c)
    if method == "quadrature":
        if nonlinearity(name).homogeneous_degree is not None:
            return polar_expectations(name, a, b, c)
        return gauss_hermite_expectations(name, a, b, c, deg)
    if method == "gauss_hermite":
        return gauss_hermite_expectations(name, a, b, c, deg)
    raise ValueError(f"unknown method {method!r}: closed | quadrature | gauss_hermite")


# ----------------------------------------------------------------------------- analytic kernels


class Kernels(NamedTuple):
    """The limiting kernels of Prop. 1 (Sigma(L)) and Thm 1 (Theta(L)_inf)."""

    nngp: jax.Array  # Sigma(L)(x1, x2), shape (N, M)
    ntk: jax.Array   # Theta(L)_inf(x1, x2), shape (N, M)


def kernels(x1: ArrayLike, x2: ArrayLike | None = None, *, depth: int, beta: float = 0.1,
            nonlin: str = "relu", method: str = "closed", deg: int = 64,
            row_batch: int | None = None, all_depths: bool = False) -> Kernels:
    """The limiting kernels Sigma(L) (Prop. 1) and Theta(L)_inf (Thm 1) for all pairs (x1[i], x2[j]).

    The recursion runs on the triple (Sigma(x,x), Sigma(x',x'), Sigma(x,x')) of each pair, with the
    2-D Gaussian expectations of :func:`expectations` (``method``: closed | quadrature |
    gauss_hermite, ``deg`` nodes per axis). With quadrature the pair grid is processed
    ``row_batch`` rows at a time (lax.map) to bound memory. Closed forms are elementwise in the
    pairs, so their inputs are padded to a few row counts (powers of two, at least 64) and one
    compiled recursion serves many shapes; the padding rows are cut off again.

    Args:
      x1: inputs, shape (N, n_0).
      x2: inputs, shape (M, n_0); None means ``x1``.
      depth: L >= 1, the number of weight layers.
      beta: the bias scale of the NTK parametrisation.
      nonlin: a key of :data:`NONLINEARITIES`.
      all_depths: also return every depth l = 1..L.

    Returns:
      ``Kernels(nngp, ntk)``, each (N, M), or (L, N, M) with ``all_depths``.
    """
    if depth < 1:
        raise ValueError("depth (number of weight layers) must be >= 1")
    x1 = jnp.asarray(x1)
    x2 = x1 if x2 is None else jnp.asarray(x2)
    kw = dict(depth=depth, beta=beta, nonlin=nonlin, method=method, deg=deg, row_batch=row_batch,
              all_depths=all_depths)
    if method != "closed" or isinstance(x1, jax.core.Tracer) or isinstance(x2, jax.core.Tracer):
        return _kernels(x1, x2, **kw)
    n, m = x1.shape[0], x2.shape[0]
    k = _kernels(_pad_rows(x1), _pad_rows(x2), **kw)
    return Kernels(*(jnp.asarray(np.asarray(t)[..., :n, :m]) for t in k))


def _pad_rows(x: jax.Array, least: int = 64) -> jax.Array:
    """``x`` with its last row repeated up to max(least, the next power of two) rows (in numpy:
    no compiled padding op per shape)."""
    rows = max(least, 1 << max(0, x.shape[0] - 1).bit_length())
    return jnp.asarray(np.pad(np.asarray(x), ((0, rows - x.shape[0]), (0, 0)), mode="edge"))


@partial(jax.jit, static_argnames=("depth", "nonlin", "method", "deg", "row_batch", "all_depths"))
def _kernels(x1, x2, *, depth, beta, nonlin, method, deg, row_batch, all_depths) -> Kernels:
    """:func:`kernels` on explicit ``x1``, ``x2`` (one compiled recursion per shape)."""
    n0 = x1.shape[-1]
    q1 = jnp.sum(x1 * x1, -1) / n0 + beta ** 2
    q2 = jnp.sum(x2 * x2, -1) / n0 + beta ** 2
    c = x1 @ x2.T / n0 + beta ** 2

    def expect(a, b, cc):
        if method == "closed" or row_batch is None:
            return expectations(nonlin, a, b, cc, method, deg)
        n = a.shape[0]
        pad = (-n) % row_batch
        padded = [jnp.pad(jnp.broadcast_to(t, cc.shape), ((0, pad), (0, 0)), constant_values=1.0)
                  for t in (a, b, cc)]
        rows = [t.reshape(-1, row_batch, cc.shape[1]) for t in padded]
        e, ed = lax.map(lambda r: expectations(nonlin, *r, method, deg), tuple(rows))
        return e.reshape(-1, cc.shape[1])[:n], ed.reshape(-1, cc.shape[1])[:n]

    ntk = c
    layers = [(c, ntk)]
    for _ in range(depth - 1):
        e, ed = expect(q1[:, None], q2[None, :], c)
        e1, _ = expectations(nonlin, q1, q1, q1, method, deg)
        e2, _ = expectations(nonlin, q2, q2, q2, method, deg)
        c = e + beta ** 2
        ntk = ntk * ed + c
        q1, q2 = e1 + beta ** 2, e2 + beta ** 2
        layers.append((c, ntk))
    if all_depths:
        return Kernels(jnp.stack([l[0] for l in layers]), jnp.stack([l[1] for l in layers]))
    return Kernels(c, ntk)


@jax.jit
def circle(angles: ArrayLike) -> jax.Array:
    """Points x = (cos gamma, sin gamma) on the unit circle (the inputs of Section 6, n_0 = 2); one
    compiled program per number of angles.

    Args:
      angles: gamma, shape (G,).

    Returns:
      Shape (G, 2).
    """
    return jnp.stack([jnp.cos(angles), jnp.sin(angles)], -1)


def circulant_spectrum(row: ArrayLike) -> np.ndarray:
    """Eigenvalues of the symmetric circulant Gram matrix whose first row is ``row`` (a kernel that
    depends only on gamma - gamma', on M equispaced circle points): the real DFT of the row, by
    frequency k = 0 .. M-1 (k and M-k are the same eigenvalue). Used for Prop. 2.

    Args:
      row: the Gram's first row, shape (M,).

    Returns:
      The M eigenvalues, shape (M,).
    """
    return np.real(np.fft.fft(np.asarray(row)))


def numerical_rank(eigenvalues: ArrayLike, rtol: float = 1e-10) -> int:
    """The numerical rank for Prop. 2's polynomial counter-examples.

    Args:
      eigenvalues: any shape.
      rtol: threshold relative to the largest modulus.

    Returns:
      How many eigenvalues have modulus above ``rtol`` times the largest.
    """
    ev = np.abs(np.asarray(eigenvalues))
    return int(np.sum(ev > rtol * ev.max()))


# ----------------------------------------------------------------------------- finite networks


Params = list[tuple[jax.Array, jax.Array]]  # [(W(l) (n_{l+1}, n_l), b(l) (n_{l+1},)), ...]


def init_params(key: jax.Array, widths: Sequence[int], dtype: DTypeLike = jnp.float64) -> Params:
    """Initialisation of Section 2: all weights and biases i.i.d. N(0, 1). One normal draw of all
    P parameters, cut into layers (one sampler in the compiled program instead of 2L).

    Args:
      key: a ``jax.random`` key.
      widths: [n_0, n_1, ..., n_L].
      dtype: the parameters' dtype.

    Returns:
      [(W(l) of shape (n_{l+1}, n_l), b(l) of shape (n_{l+1},)) for l = 0..L-1].
    """
    z = jax.random.normal(key, (num_params(widths),), dtype)
    params, i = [], 0
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        w = z[i:i + n_in * n_out].reshape(n_out, n_in)
        i += n_in * n_out
        params.append((w, z[i:i + n_out]))
        i += n_out
    return params


def num_params(widths: Sequence[int]) -> int:
    """The number of parameters of Section 2's network.

    Args:
      widths: [n_0, ..., n_L].

    Returns:
      P = sum_l (n_l + 1) n_{l+1}.
    """
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


def _forward_trace(params, x, beta, nonlin):
    """The post-activations a(0..L-1), the hidden pre-activations a~(1..L-1), and the output."""
    nl = nonlinearity(nonlin)
    acts, pres = [x], []
    h = x
    for i, (w, b) in enumerate(params):
        z = h @ w.T / math.sqrt(w.shape[1]) + beta * b
        if i == len(params) - 1:
            return acts, pres, z
        pres.append(z)
        h = nl.fn(z)
        acts.append(h)


def apply(params: Params, x: ArrayLike, beta: float = 0.1, nonlin: str = "relu") -> jax.Array:
    """The network function f_theta(x) in the NTK parametrisation (Section 2):
    a~(l+1) = W(l) a(l) / sqrt(n_l) + beta b(l), a(l) = sigma(a~(l)), f = a~(L).

    Args:
      params: from :func:`init_params`.
      x: inputs, shape (N, n_0).

    Returns:
      Shape (N, n_L); for the paper's scalar output use ``apply(...)[:, 0]``.
    """
    return _forward_trace(params, x, beta, nonlin)[2]


def _deltas(params, pres, nonlin):
    """delta(l) = d f / d a~(l) for l = 1..L (scalar output), by backpropagation; (N, n_l) each."""
    nl = nonlinearity(nonlin)
    d = jnp.ones((pres[0].shape[0] if pres else 1, 1), params[-1][0].dtype)
    out = [d]
    for (w, _), z in zip(params[:0:-1], pres[::-1]):
        d = nl.grad(z) * (d @ w) / math.sqrt(w.shape[1])
        out.append(d)
    return out[::-1]  # delta(1), ..., delta(L)


def empirical_ntk(params: Params, x1: ArrayLike, x2: ArrayLike | None = None, beta: float = 0.1,
                  nonlin: str = "relu") -> jax.Array:
    """The exact NTK Theta(x1[i], x2[j]) = sum_p df/dtheta_p(x1[i]) df/dtheta_p(x2[j]) of a scalar
    output network, without Jacobians: with delta(l) from backprop,
    Theta = sum_l [delta(l+1)(x) . delta(l+1)(x')] [a(l)(x) . a(l)(x') / n_l + beta^2].
    Memory O((N + M) * width) per layer, so it works at width 10^4 (Section 4, the NTK).

    Args:
      params: a scalar-output network from :func:`init_params`.
      x1: inputs, shape (N, n_0).
      x2: inputs, shape (M, n_0); None means ``x1``.

    Returns:
      Theta, shape (N, M).
    """
    if params[-1][0].shape[0] != 1:
        raise ValueError("empirical_ntk is for scalar-output networks (n_L = 1)")
    acts1, pres1, _ = _forward_trace(params, x1, beta, nonlin)
    d1 = _deltas(params, pres1, nonlin)
    if x2 is None:
        acts2, d2 = acts1, d1
    else:
        acts2, pres2, _ = _forward_trace(params, x2, beta, nonlin)
        d2 = _deltas(params, pres2, nonlin)
    theta = 0.0
    for a1, a2, e1, e2 in zip(acts1, acts2, d1, d2):
        theta = theta + (e1 @ e2.T) * (a1 @ a2.T / a1.shape[1] + beta ** 2)
    return theta


def empirical_ntk_jacobian(params: Params, x1: ArrayLike, x2: ArrayLike | None = None,
                           beta: float = 0.1, nonlin: str = "relu") -> jax.Array:
    """The NTK of Section 4 by brute force: per-input gradients (vmapped autodiff) and J1 J2^T.
    Small widths only (it materialises N x P).

    Args:
      params: a scalar-output network.
      x1: inputs, shape (N, n_0).
      x2: inputs, shape (M, n_0); None means ``x1``.

    Returns:
      Theta, shape (N, M).
    """
    x2 = x1 if x2 is None else x2

    def jac(x):
        g = jax.vmap(jax.grad(lambda p, xi: apply(p, xi[None], beta, nonlin)[0, 0]), (None, 0))(params, x)
        return jnp.concatenate([t.reshape(x.shape[0], -1) for t in jax.tree_util.tree_leaves(g)], 1)

    return jac(x1) @ jac(x2).T


def loss(params: Params, x: ArrayLike, y: ArrayLike, beta: float = 0.1,
         nonlin: str = "relu") -> jax.Array:
    """The least-squares cost of Section 5, C = (1/2N) sum_i (f(x_i) - y_i)^2 (scalar output).

    Args:
      params: the network.
      x: inputs, shape (N, n_0).
      y: targets, shape (N,).

    Returns:
      The cost, a scalar.
    """
    return 0.5 * jnp.mean((apply(params, x, beta, nonlin)[:, 0] - y) ** 2)


def gd_step(params: Params, x: ArrayLike, y: ArrayLike, lr: float, beta: float = 0.1,
            nonlin: str = "relu") -> Params:
    """One gradient-descent step theta <- theta - lr grad C on :func:`loss`; time advances by
    t = lr (Section 5).

    Args:
      params: the network.
      x: inputs, shape (N, n_0); y: targets, shape (N,).
      lr: the step size.

    Returns:
      The new parameters (same structure).
    """
    g = jax.grad(loss)(params, x, y, beta, nonlin)
    return jax.tree_util.tree_map(lambda p, gp: p - lr * gp, params, g)


class Trained(NamedTuple):
    """A network after gradient descent, with the optional record of its training outputs."""

    params: list
    train_outputs: jax.Array | None  # f_t(X_train) for t = 0, lr, ..., lr*steps: (steps + 1, N)


def train(params: Params, x: ArrayLike, y: ArrayLike, *, lr: float, steps: int, beta: float = 0.1,
          nonlin: str = "relu", record: bool = False) -> Trained:
    """Full-batch gradient descent on the least-squares cost (Section 5), ``steps`` steps of size
    ``lr`` (lax.scan), t = lr * steps; with ``record`` the training outputs f_t(X) after each step
    are kept. The record comes from the gradient's own forward pass (no second forward per step).

    Args:
      params: the initial network.
      x: training inputs, shape (N, n_0).
      y: targets, shape (N,).

    Returns:
      ``Trained(params, train_outputs)``, the record of shape (steps + 1, N) or None.
    """

    def cost(p):
        out = apply(p, x, beta, nonlin)[:, 0]
        return 0.5 * jnp.mean((out - y) ** 2), out

    def step(p, _):
        if not record:
            return gd_step(p, x, y, lr, beta, nonlin), None
        g, out = jax.grad(cost, has_aux=True)(p)
        return jax.tree_util.tree_map(lambda q, gq: q - lr * gq, p, g), out

    params, outs = lax.scan(step, params, None, length=steps)
    if record:
        outs = jnp.concatenate([outs, apply(params, x, beta, nonlin)[:, 0][None]], 0)
    return Trained(params, outs)


# ----------------------------------------------------------------------------- ensembles of networks


def auto_batch(widths: Sequence[int], dtype: DTypeLike = jnp.float64,
               budget_bytes: float | None = None, copies: int = 6) -> int:
    """How many networks to vmap at once so that ``copies`` copies of their parameters (weights,
    gradients, scan buffers, ...) fit in ``budget_bytes``: by default about a CPU cache (32 MiB; a
    larger batch is memory-bound and slower there) or 2 GiB on an accelerator.

    Args:
      widths: [n_0, ..., n_L] of one network.

    Returns:
      The batch size, at least 1.
    """
    if budget_bytes is None:
        budget_bytes = 2 ** 25 if jax.default_backend() == "cpu" else 2 ** 31
    per_net = num_params(widths) * jnp.dtype(dtype).itemsize * copies
    return max(1, int(budget_bytes // per_net))


class EnsembleResult(NamedTuple):
    """One ensemble of :func:`ensemble`, every field with a leading axis over networks."""

    f0: jax.Array             # f at init on x_eval, (S, E)
    fT: jax.Array             # f after training on x_eval, (S, E)
    ntk0: jax.Array | None    # empirical Theta(x_ntk1, x_ntk2) at init, (S, A, B)
    ntkT: jax.Array | None    # ... after training
    train_outputs: jax.Array | None  # f_t(X_train), (S, steps + 1, N)


@partial(jax.jit, static_argnames=("widths", "lr", "steps", "nonlin", "record", "dtype",
                                   "batch_size", "with_ntk", "shift_target"))
def ensemble(keys: jax.Array, x_train: ArrayLike, y_train: ArrayLike, x_eval: ArrayLike,
             x_ntk1: ArrayLike | None = None, x_ntk2: ArrayLike | None = None, *, widths: tuple,
             lr: float = 1.0, steps: int = 0, beta: float = 0.1, nonlin: str = "relu",
             record: bool = False, dtype: DTypeLike = jnp.float64, batch_size: int = 1,
             with_ntk: bool = False, shift_target: bool = False) -> EnsembleResult:
    """One network per key: init (N(0,1), NTK parametrisation), optional empirical NTK, ``steps``
    GD steps on (x_train, y_train), evaluation on x_eval, NTK again. With ``shift_target`` the target
    is f_0(x_train) + y_train (the paper's Fig. 3 protocol). Networks run ``batch_size`` at a time
    (vmap inside lax.map), so the same call fits a CPU or a GPU. Sections 4-6 (Figs. 1-3).

    Args:
      keys: one key per network, shape (S,).
      x_train: training inputs (N, n_0); y_train: targets (N,) (the shift with ``shift_target``).
      x_eval: inputs where f_0 and f_T are returned, (E, n_0).
      x_ntk1, x_ntk2: the empirical NTK's inputs, (A, n_0) and (B, n_0) (None: x_ntk1).
      widths: (n_0, ..., n_L), static.

    Returns:
      :class:`EnsembleResult` with a leading axis of size S.
    """
    cast = lambda t: None if t is None else jnp.asarray(t, dtype)
    x_train, y_train, x_eval, x_ntk1, x_ntk2 = map(cast, (x_train, y_train, x_eval, x_ntk1, x_ntk2))
    beta = jnp.asarray(beta, dtype)

    def one(key):
        p = init_params(key, list(widths), dtype)
        f0 = apply(p, x_eval, beta, nonlin)[:, 0]
        ntk0 = empirical_ntk(p, x_ntk1, x_ntk2, beta, nonlin) if with_ntk else None
        y = y_train + apply(p, x_train, beta, nonlin)[:, 0] if shift_target else y_train
        tr = train(p, x_train, y, lr=lr, steps=steps, beta=beta, nonlin=nonlin, record=record)
        fT = apply(tr.params, x_eval, beta, nonlin)[:, 0]
        ntkT = empirical_ntk(tr.params, x_ntk1, x_ntk2, beta, nonlin) if with_ntk else None
        return EnsembleResult(f0, fT, ntk0, ntkT, tr.train_outputs)

    return lax.map(one, keys, batch_size=batch_size)


@partial(jax.jit, static_argnames=("widths", "nonlin", "dtype", "batch_size"))
def init_ensemble(keys: jax.Array, x: ArrayLike, *, widths: tuple, beta: float = 0.1,
                  nonlin: str = "relu", dtype: DTypeLike = jnp.float64,
                  batch_size: int = 1) -> tuple[jax.Array, jax.Array]:
    """Networks at initialisation only (Prop. 1, Thm 1), one per key, ``batch_size`` at a time.

    Args:
      keys: shape (S,).
      x: inputs, shape (P, n_0).
      widths: (n_0, ..., n_L), static.

    Returns:
      (f(x) of shape (S, P), the empirical NTK Theta(x, x) of shape (S, P, P)).
    """
    x = jnp.asarray(x, dtype)
    beta = jnp.asarray(beta, dtype)

    def one(key):
        p = init_params(key, list(widths), dtype)
        return apply(p, x, beta, nonlin)[:, 0], empirical_ntk(p, x, None, beta, nonlin)

    return lax.map(one, keys, batch_size=batch_size)


# ----------------------------------------------------------------------------- infinite-width dynamics


def _decay(lam, t=None, lr=1.0, steps=None):
    """exp(-t lam) (gradient flow) or (1 - lr lam)^steps (gradient descent); t=None, steps=None:
    t = infinity."""
    if steps is not None:
        return (1 - lr * lam) ** steps
    if t is None:
        return jnp.zeros_like(lam)
    return jnp.exp(-t * lam)


class Spectrum(NamedTuple):
    """Kernel principal components (Section 5): eigenpairs of K/N, descending."""

    eigenvalues: jax.Array   # of K/N, descending
    eigenvectors: jax.Array  # columns, unit norm


def kernel_pcs(k_train: ArrayLike) -> Spectrum:
    """Kernel principal components (Section 5, non-centred): eigenpairs of K/N, descending. The
    i-th PC on the data is f^(i)(X) = sqrt(N) v_i (unit norm in p_in).

    Args:
      k_train: the Gram K(X, X), shape (N, N).

    Returns:
      ``Spectrum(eigenvalues (N,), eigenvectors (N, N) as columns)``.
    """
    n = k_train.shape[0]
    lam, v = jnp.linalg.eigh(k_train / n)
    return Spectrum(lam[::-1], v[:, ::-1])


def gd_residual(k_train: ArrayLike, r0: ArrayLike, t: float | None = None, lr: float = 1.0,
                steps: int | None = None) -> jax.Array:
    """Training residual u_t - y of kernel gradient descent from residual r0 on the data
    (Section 5): exp(-t K/N) r0 (flow) or (I - lr K/N)^steps r0 (discrete GD).

    Args:
      k_train: the Gram K(X, X), shape (N, N).
      r0: the initial residual u_0 - y, shape (N,).
      t, lr, steps: flow time, or step size and number of GD steps; neither: t = inf.

    Returns:
      Shape (N,).
    """
    lam, v = kernel_pcs(k_train)
    return v @ (_decay(lam, t, lr, steps) * (v.T @ r0))


def _solve_operator(k_train, t=None, lr=1.0, steps=None):
    """A_t = K^-1 (I - D_t) with D_t the decay above; symmetric; t = inf gives K^-1."""
    n = k_train.shape[0]
    lam, v = jnp.linalg.eigh(k_train)
    return (v * ((1 - _decay(lam / n, t, lr, steps)) / lam)) @ v.T


def kernel_predict(k_train: ArrayLike, k_test_train: ArrayLike, y: ArrayLike,
                   f0_train: ArrayLike | None = None, f0_test: ArrayLike | None = None,
                   t: float | None = None, lr: float = 1.0, steps: int | None = None) -> jax.Array:
    """The function learned by kernel gradient descent (Section 5, kernel K fixed): f_t(x) =
    f_0(x) + K(x, X) A_t (y - f_0(X)); without f_0 (f_0 = 0) this is kernel (ridgeless) regression
    at t = inf.

    Args:
      k_train: K(X, X), (N, N); k_test_train: K(x, X), (M, N); y: targets (N,).
      f0_train, f0_test: f_0 on X (N,) and on x (M,), or None.
      t, lr, steps: flow time, or step size and number of GD steps; neither: t = inf.

    Returns:
      f_t(x), shape (M,).
    """
    a = _solve_operator(k_train, t, lr, steps)
    r = y if f0_train is None else y - f0_train
    out = k_test_train @ (a @ r)
    return out if f0_test is None else f0_test + out


class Gaussian(NamedTuple):
    """A Gaussian law on test points: mean and covariance (or variances)."""

    mean: jax.Array
    cov: jax.Array  # (M, M), or (M,) variances when ``diag``


def trained_gaussian(ntk_train: ArrayLike, ntk_test_train: ArrayLike, nngp_train: ArrayLike,
                     nngp_test_train: ArrayLike, nngp_test: ArrayLike, y: ArrayLike,
                     t: float | None = None, lr: float = 1.0, steps: int | None = None,
                     diag: bool = True) -> Gaussian:
    """Law of the infinite-width network after training (Section 5): f_0 ~ GP(0, Sigma), kernel GD
    with Theta_inf makes f_t Gaussian with mean Theta(x, X) A_t y and covariance
    Sigma(x, x') - Theta(x,X) A_t Sigma(X,x') - Sigma(x,X) A_t Theta(X,x') + Theta(x,X) A_t Sigma(X,X) A_t Theta(X,x').
    ``nngp_test`` is Sigma(x, x) (M,) with ``diag`` or the full Sigma(x, x') (M, M).

    Args:
      ntk_train, nngp_train: Theta and Sigma on the data, (N, N).
      ntk_test_train, nngp_test_train: the same between test points and data, (M, N).
      y: targets, (N,).
      t, lr, steps: flow time, or step size and number of GD steps; neither: t = inf.

    Returns:
      ``Gaussian(mean (M,), cov (M,) with diag or (M, M))``.
    """
    a = _solve_operator(ntk_train, t, lr, steps)
    ka = ntk_test_train @ a                      # (M, N)
    mean = ka @ y
    cross = ka @ nngp_test_train.T               # Theta(x,X) A Sigma(X,x')  (M, M)
    if diag:
        var = nngp_test - 2 * jnp.diagonal(cross) + jnp.einsum("mi,ij,mj->m", ka, nngp_train, ka)
        return Gaussian(mean, var)
    cov = nngp_test - cross - cross.T + ka @ nngp_train @ ka.T
    return Gaussian(mean, cov)


class LinearisedSplit(NamedTuple):
    """The trained linearised network's output split into kernel and prior parts (Section 5)."""

    kernel_part: jax.Array  # Theta_0(x, X) A_t y
    prior_part: jax.Array   # f_0(x) - Theta_0(x, X) A_t f_0(X); mean exactly 0 over initialisations


def linearised_split(ntk_train: ArrayLike, ntk_test_train: ArrayLike, f0_train: ArrayLike,
                     f0_test: ArrayLike, y: ArrayLike, t: float | None = None, lr: float = 1.0,
                     steps: int | None = None) -> LinearisedSplit:
    """The network linearised at initialisation (first-order Taylor in the parameters) and trained on
    least squares is kernel GD with its own empirical NTK Theta_0 (Section 5):
    f_lin_t(x) = f_0(x) + Theta_0(x, X) A_t (y - f_0(X)) = kernel_part + prior_part.
    Negating the last layer maps f_0 to -f_0 and leaves Theta_0 unchanged, and the N(0, 1) law is
    symmetric, so E[prior_part] = 0 exactly at every width: it is a zero-mean control variate, and
    E[kernel_part] is the linearised network's mean, to compare with the Section 5 mean
    Theta_inf(x, X) A_t y.

    Args:
      ntk_train: Theta_0(X, X), (N, N); ntk_test_train: Theta_0(x, X), (M, N).
      f0_train, f0_test: f_0 on X (N,) and on x (M,); y: targets (N,).
      t, lr, steps: flow time, or step size and number of GD steps; neither: t = inf.

    Returns:
      ``LinearisedSplit(kernel_part (M,), prior_part (M,))``.
    """
    a = _solve_operator(ntk_train, t, lr, steps)
    return LinearisedSplit(ntk_test_train @ (a @ y), f0_test - ntk_test_train @ (a @ f0_train))


def fit_decay_rates(residuals: ArrayLike, eigenvectors: ArrayLike, lr: float,
                    indices: Sequence[int], eigenvalues: ArrayLike,
                    window: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit-time decay rate of the training residual along eigenvector i: with
    p_i(k) = v_i . r_k, the GD rate is (1 - rho_i)/lr where rho_i is the least-squares per-step
    factor of log|p_i(k)/p_i(0)| over the steps with lr * lambda_i * k <= window (so each fit uses the
    stretch where that component is still within e^-window of its start). Section 5: for kernel
    GD the rate is exactly lambda_i.

    Args:
      residuals: f_t(X) - f*, shape (steps + 1, N).
      eigenvectors: v_i as columns, (N, N); eigenvalues: lambda_i of K/N, (N,).
      indices: the k PCs to fit.

    Returns:
      (rates (k,), steps used (k,)).
    """
    proj = np.asarray(residuals) @ np.asarray(eigenvectors)[:, list(indices)]  # (steps+1, k)
    rates, used = [], []
    for j, i in enumerate(indices):
        kmax = max(2, int(window / (lr * float(eigenvalues[i]))))
        kmax = min(kmax, proj.shape[0] - 1)
        ks = np.arange(1, kmax + 1)
        logs = np.log(np.abs(proj[1:kmax + 1, j] / proj[0, j]))
        slope = float(np.sum(ks * logs) / np.sum(ks * ks))  # through the origin
        rates.append((1 - math.exp(slope)) / lr)
        used.append(kmax)
    return np.array(rates), np.array(used)
