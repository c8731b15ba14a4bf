"""Tests for paperlib.rmt (and the SLQ / GGN additions to paperlib.linalg) against closed forms, dense
numpy eigendecompositions, brute force and finite differences, in float64."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from paperlib import linalg, rmt  # noqa: E402

SIZES = (5, 4, 3)


def _toy(seed=0, n=12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, SIZES[0]))
    y = rng.integers(0, SIZES[-1], n).astype(np.int32)
    theta = rmt.init_mlp(jax.random.PRNGKey(seed), SIZES) + 0.1 * jnp.asarray(rng.standard_normal(rmt.mlp_num_params(SIZES)))
    return jnp.asarray(X), jnp.asarray(y), theta


@jax.jit
def _dense_hessian(theta, X, y, w):
    """Dense Hessian of the masked batch loss, one compile per shape (eager jax.hessian compiles
    every primitive anew and costs seconds)."""
    return jax.hessian(lambda t: rmt.weighted_loss(t, X, y, w, SIZES))(theta)


@jax.jit
def _logit_jacobian(theta, X):
    """(n, C, P) Jacobian of the logits, by reverse mode."""
    return jax.jacrev(lambda t: rmt.mlp_logits(t, X, SIZES))(theta)


@jax.jit
def _batch_grad(theta, X, y):
    """Gradient of the mean loss over the rows of X (one compile per batch shape)."""
    return jax.grad(lambda s: jnp.mean(rmt.per_sample_loss(s, X, y, SIZES)))(theta)


# ------------------------------------------------------------------------- closed forms


def test_finite_population_factor_matches_sampling_variance_brute_force():
    """Var of the mean of B draws without replacement from x_1..x_N equals c_B * (1/N) sum (x - mean)^2."""
    x = np.array([0.3, -1.2, 2.0, 0.7, 5.0])
    N, B = 5, 2
    import itertools
    means = [np.mean(x[list(s)]) for s in itertools.combinations(range(N), B)]
    np.testing.assert_allclose(np.var(means), rmt.finite_population_factor(B, N) * np.var(x), rtol=1e-12)
    assert float(rmt.finite_population_factor(N, N)) == 0.0
    assert float(rmt.finite_population_factor(8)) == 1 / 8


def test_wigner_formula_branches_and_switch():
    lam, P, s2e = 3.0, 200, 0.5
    bstar = rmt.wigner_switch_batch(lam, P, s2e)
    assert bstar == pytest.approx(P * s2e / lam**2)
    val, out = rmt.wigner_lambda_max(lam, P, s2e, np.array([bstar * 0.5, bstar * 2]))
    s2 = P * s2e / np.array([bstar * 0.5, bstar * 2])
    np.testing.assert_allclose(val, [2 * np.sqrt(s2[0]), lam + s2[1] / lam])
    assert list(np.asarray(out)) == [False, True]
    # continuity at B*: lambda + s^2/lambda = 2 s when s = lambda; finite-population B* solves lambda^2 = P s2 c_B
    v, _ = rmt.wigner_lambda_max(lam, P, s2e, np.array([bstar]))
    np.testing.assert_allclose(v, 2 * lam, rtol=1e-12)
    bN = rmt.wigner_switch_batch(lam, P, s2e, 500)
    np.testing.assert_allclose(P * s2e * rmt.finite_population_factor(bN, 500), lam**2, rtol=1e-12)


def test_wigner_outlier_is_the_resolvent_root():
    """z = lambda + s^2/lambda solves 1/lambda = G_sc(z) = (z - sqrt(z^2 - 4 s^2)) / (2 s^2)."""
    lam, s = 2.0, 1.3
    z, _ = rmt.wigner_lambda_max(lam, 1, s**2, 1.0)
    np.testing.assert_allclose((z - np.sqrt(z**2 - 4 * s**2)) / (2 * s**2), 1 / lam, rtol=1e-12)


def test_wishart_formula_continuity_and_limits():
    ell, P = 5.0, 400
    bstar = rmt.wishart_switch_batch(ell, P, 1.0)
    a, _ = rmt.wishart_lambda_max(ell, P, 1.0, bstar * (1 + 1e-9))
    b, _ = rmt.wishart_lambda_max(ell, P, 1.0, bstar * (1 - 1e-9))
    np.testing.assert_allclose(a, b, rtol=1e-6)
    big, out = rmt.wishart_lambda_max(ell, P, 1.0, 1e12)
    assert bool(out) and float(big) == pytest.approx(ell, rel=1e-8)


def test_polyak_heavy_ball_is_optimal_on_a_quadratic():
    """Heavy ball with Polyak's parameters contracts every eigen-mode at rate sqrt(momentum)."""
    L, mu = 9.0, 1.0
    lr, mom = rmt.polyak_heavy_ball(L, mu)
    assert float(lr) == pytest.approx(4 / 16) and float(mom) == pytest.approx(0.25)
    for h in (mu, 0.5 * (L + mu), L):
        T = np.array([[1 + mom - lr * h, -mom], [1.0, 0.0]])
        assert np.max(np.abs(np.linalg.eigvals(T))) == pytest.approx(np.sqrt(mom), rel=1e-6)


# ------------------------------------------------------------------------- synthetic models


def test_kaniel_paige_bound_holds_for_lanczos_and_is_tight_at_one_step():
    rng = np.random.default_rng(1)
    eigs = np.sort(np.concatenate([[0.05], rng.uniform(0.3, 4.0, 48), [5.0]]))
    A = jnp.asarray(np.diag(eigs))
    v0 = rng.standard_normal(50)
    cos = abs(v0[0]) / np.linalg.norm(v0)
    for m in (2, 5, 10, 20):
        bottom = float(linalg.ritz(linalg.lanczos(lambda v: A @ v, jnp.asarray(v0), m)).nodes[0])
        assert 0.0 <= bottom - eigs[0] <= rmt.kaniel_paige_bottom_bound(eigs, cos, m) * (1 + 1e-9)
    # m = 1: T_0 = 1 and the bound reads (spread) tan^2 phi, above the Rayleigh quotient's error
    rayleigh = float(v0 @ (eigs * v0) / (v0 @ v0))
    assert rayleigh - eigs[0] <= rmt.kaniel_paige_bottom_bound(eigs, cos, 1)


def test_spiked_wigner_full_batch_equals_the_spike():
    tops, overlaps = rmt.spiked_wigner_batches(jax.random.PRNGKey(0), 20, 30, 2.0, 0.3, [30], 2)
    np.testing.assert_allclose(tops, 2.0, rtol=1e-10)  # H_batch = H_emp = 2 e1 e1^T exactly
    np.testing.assert_allclose(overlaps, 1.0, rtol=1e-10)


def test_spiked_wishart_batches_match_dense_numpy_for_same_draws():
    """Regenerate the same Gaussian inputs from the documented key schedule (one split per B) and
    compare the top eigenvalues with numpy's eigvalsh of X^T X / B (the P x P matrix)."""
    key, P, spike, Bs, draws = jax.random.PRNGKey(3), 6, 4.0, [3, 9], 2
    got = rmt.spiked_wishart_batches(key, P, spike, 1.0, Bs, draws)
    scale = np.sqrt(np.r_[spike, np.ones(P - 1)])
    for a, (k, B) in enumerate(zip(jax.random.split(key, len(Bs)), Bs)):
        X = np.asarray(jax.random.normal(k, (draws, B, P))) * scale
        for d in range(draws):
            ref = np.linalg.eigvalsh(X[d].T @ X[d] / B)[-1]
            assert got[a, d] == pytest.approx(ref, rel=1e-10)
    with pytest.raises(ValueError):
        rmt.spiked_wishart_batches(key, 6, 4.0, 1.0, [0], 1)


def test_spiked_wigner_batches_below_full_match_dense_numpy():
    """B < N: rebuild every W_i from fold_in(noise key, i), form H_B = spike e1 e1^T + mean_S W - mean W
    for the documented permutation, and compare top eigenvalue and overlap with numpy."""
    key, P, N, spike, s2, Bs, draws = jax.random.PRNGKey(7), 8, 12, 2.0, 0.4, [2, 5], 2
    tops, overlaps = rmt.spiked_wigner_batches(key, P, N, spike, s2, Bs, draws)
    k_noise, k_batch = jax.random.split(key)
    W = []
    for i in range(N):
        G = np.asarray(jax.random.normal(jax.random.fold_in(k_noise, i), (P, P))) * np.sqrt(s2)
        W.append((G + G.T) / np.sqrt(2.0))
    W = np.stack(W)
    for a, B in enumerate(Bs):
        for d in range(draws):
            order = np.asarray(jax.random.permutation(jax.random.fold_in(k_batch, a * draws + d), N))
            H = W[order[:B]].mean(0) - W.mean(0)
            H[0, 0] += spike
            ev, vec = np.linalg.eigh(H)
            assert tops[a, d] == pytest.approx(ev[-1], rel=1e-10)
            assert overlaps[a, d] == pytest.approx(vec[0, -1] ** 2, rel=1e-8)
    assert np.all(tops[0] != tops[1])  # B < N: the fluctuation is not zero


# ------------------------------------------------------------------------- MLP curvature


def test_mlp_logits_against_manual_forward():
    X, y, theta = _toy()
    t = np.asarray(theta)
    W1, b1 = t[:20].reshape(5, 4), t[20:24]
    W2, b2 = t[24:36].reshape(4, 3), t[36:39]
    ref = np.tanh(np.asarray(X) @ W1 + b1) @ W2 + b2
    np.testing.assert_allclose(rmt.mlp_logits(theta, X, SIZES), ref, rtol=1e-12)
    assert rmt.mlp_num_params(SIZES) == 39


def test_batch_hessian_and_ggn_matvecs_match_dense_and_finite_differences():
    X, y, theta = _toy()
    w = jnp.zeros(12).at[jnp.array([1, 4, 7])].set(1.0)
    H = np.asarray(_dense_hessian(theta, X, y, w))
    v = jax.random.normal(jax.random.PRNGKey(1), theta.shape)
    hvp = jax.jit(lambda v: rmt.batch_hessian_matvec(theta, X, y, w, SIZES)(v))
    np.testing.assert_allclose(hvp(v), H @ v, rtol=1e-9, atol=1e-12)
    # finite difference of the gradient
    g = jax.jit(jax.grad(lambda t: rmt.weighted_loss(t, X, y, w, SIZES)))
    fd = (g(theta + 1e-5 * v) - g(theta - 1e-5 * v)) / 2e-5
    np.testing.assert_allclose(H @ np.asarray(v), fd, rtol=1e-5, atol=1e-8)
    # GGN from explicit Jacobians and softmax curvature diag(p) - p p^T
    idx = np.array([1, 4, 7])
    J = np.asarray(_logit_jacobian(theta, X[idx]))  # (3, C, P)
    z = np.asarray(rmt.mlp_logits(theta, X[idx], SIZES))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    G = sum(J[i].T @ (np.diag(p[i]) - np.outer(p[i], p[i])) @ J[i] for i in range(3)) / 3
    ggn = jax.jit(lambda v: rmt.batch_ggn_matvec(theta, X, y, w, SIZES)(v))
    np.testing.assert_allclose(ggn(v), G @ v, rtol=1e-9, atol=1e-12)


def test_random_subset_masks_have_exact_sizes_and_are_uniform():
    m = np.asarray(rmt.random_subset_masks(jax.random.PRNGKey(0), 10, [1, 3, 10], 2000))
    np.testing.assert_array_equal(m.sum(-1), np.array([1, 3, 10])[:, None] * np.ones((1, 2000)))
    np.testing.assert_allclose(m[1].mean(0), 0.3, atol=0.04)  # inclusion probability B/N


def test_batch_extremes_match_eigvalsh_and_rayleigh_bound():
    X, y, theta = _toy(n=12)
    masks = rmt.random_subset_masks(jax.random.PRNGKey(2), 12, [2, 12], 2)
    u = jax.random.normal(jax.random.PRNGKey(3), theta.shape)
    u = u / jnp.linalg.norm(u)
    ext = rmt.batch_extremes(theta, X, y, masks, SIZES, u, 39)  # B = 2 is rank-deficient: breakdown-safe
    for a in range(2):
        for d in range(2):
            H = np.asarray(_dense_hessian(theta, X, y, masks[a, d]))
            ev = np.linalg.eigvalsh(H)
            np.testing.assert_allclose([ext.top[a, d], ext.bottom[a, d]], [ev[-1], ev[0]], rtol=1e-7, atol=1e-10)
            np.testing.assert_allclose(ext.rayleigh[a, d], np.asarray(u) @ H @ np.asarray(u), rtol=1e-9, atol=1e-12)


def test_batch_extremes_gathered_rows_equal_masked():
    X, y, theta = _toy(n=12)
    masks = rmt.random_subset_masks(jax.random.PRNGKey(4), 12, [1, 3, 5], 2)
    v0 = jax.random.normal(jax.random.PRNGKey(5), theta.shape)
    for curvature in ("hessian", "ggn"):
        full = rmt.batch_extremes(theta, X, y, masks, SIZES, v0, 20, curvature)
        gathered = rmt.batch_extremes(theta, X, y, masks, SIZES, v0, 20, curvature, rows=5)
        for a, b in zip(full, gathered):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_directional_noise_matches_per_sample_dense_hessians():
    X, y, theta = _toy(n=8)
    Hs = np.stack([np.asarray(_dense_hessian(theta, X, y, jnp.eye(8)[i])) for i in range(8)])  # H_i
    u = np.random.default_rng(5).standard_normal(theta.size)
    u /= np.linalg.norm(u)
    dev = (Hs - Hs.mean(0)) @ u
    np.testing.assert_allclose(rmt.directional_noise(theta, X, y, SIZES, jnp.asarray(u), chunk=3),
                               np.mean(np.sum(dev**2, 1)), rtol=1e-9)
    lam, vec = rmt.top_eigenpair(theta, X, y, SIZES, jax.random.PRNGKey(0), 39)
    ev, V = np.linalg.eigh(Hs.mean(0))
    assert float(lam) == pytest.approx(ev[-1], rel=1e-8)
    assert abs(float(np.asarray(vec) @ V[:, -1])) == pytest.approx(1.0, rel=1e-6)


def test_residual_matvec_is_hessian_minus_independent_dense_ggn():
    """H_B - G_B against a dense Hessian and a dense J^T H_out J from jacrev and the softmax
    cross-entropy curvature diag(p) - p p^T written out by hand; and G_B is PSD."""
    X, y, theta = _toy()
    idx = np.array([0, 3, 5, 8])
    w = jnp.zeros(12).at[idx].set(1.0)
    H = np.asarray(_dense_hessian(theta, X, y, w))
    J = np.asarray(_logit_jacobian(theta, X[idx]))
    z = np.asarray(rmt.mlp_logits(theta, X[idx], SIZES))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    G = sum(J[i].T @ (np.diag(p[i]) - np.outer(p[i], p[i])) @ J[i] for i in range(len(idx))) / len(idx)
    V = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (3, theta.size)))
    for v in V:
        np.testing.assert_allclose(rmt.batch_residual_matvec(theta, X, y, w, SIZES)(jnp.asarray(v)),
                                   (H - G) @ v, rtol=1e-8, atol=1e-11)
    assert np.linalg.eigvalsh(G)[0] > -1e-12 and np.linalg.eigvalsh(H - G)[0] < 0
    ext = rmt.batch_extremes(theta, X, y, w[None], SIZES, jnp.asarray(V[0]), 39, curvature="ggn")
    np.testing.assert_allclose([ext.top[0], ext.bottom[0]], np.linalg.eigvalsh(G)[[-1, 0]], atol=1e-9)


def test_lanczos_top5_matches_scipy_eigsh_on_an_mlp_hessian():
    """Anchor library: scipy's ARPACK on the same matrix-free HVP gives the same top-5 eigenvalues."""
    from scipy.sparse.linalg import LinearOperator, eigsh
    X, y, theta = _toy(n=12)
    mv = jax.jit(rmt.batch_hessian_matvec(theta, X, y, jnp.ones(12), SIZES))
    P = theta.size
    op = LinearOperator((P, P), matvec=lambda v: np.asarray(mv(jnp.asarray(v))), dtype=np.float64)
    ref = np.sort(eigsh(op, k=5, which="LA", tol=1e-13, return_eigenvectors=False))[::-1]
    ours = np.asarray(linalg.lanczos_top_eigenvalues(mv, jax.random.normal(jax.random.PRNGKey(1), (P,)), P, 5))
    np.testing.assert_allclose(ours, ref, rtol=1e-8)


# ------------------------------------------------------------------------- SLQ / GGN in linalg


def test_slq_weights_moments_and_density_normalisation():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    eigs = np.linspace(-1, 4, 30)
    A = jnp.asarray((Q * eigs) @ Q.T)
    r = linalg.stochastic_lanczos_quadrature(lambda v: A @ v, 30, jax.random.PRNGKey(0), 5, 30)
    np.testing.assert_allclose(r.weights.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(r.nodes[:, -1], eigs[-1], rtol=1e-10)  # m = p: exact spectrum
    # per probe, sum_k w_k theta_k^j = z^T A^j z / ||z||^2 exactly (Gauss quadrature)
    z = np.asarray(jax.random.rademacher(jax.random.PRNGKey(0), (5, 30)).astype(float))
    for j in (1, 2, 3):
        Aj = np.linalg.matrix_power(np.asarray(A), j)
        np.testing.assert_allclose(np.sum(r.weights * r.nodes**j, 1), np.einsum("ip,pq,iq->i", z, Aj, z) / 30,
                                   rtol=1e-9)
    grid = jnp.linspace(-3, 6, 4001)
    dens = linalg.spectral_density(r.nodes, r.weights, grid, 0.05)
    assert float(jnp.sum(dens) * (grid[1] - grid[0])) == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(ValueError):
        linalg.spectral_density(r.nodes, r.weights, grid, 0.0)


def test_gauss_newton_vp_linear_least_squares_is_xtx():
    rng = np.random.default_rng(1)
    X = jnp.asarray(rng.standard_normal((7, 4)))
    v = jnp.asarray(rng.standard_normal(4))
    gv = linalg.gauss_newton_vp(lambda t: X @ t, lambda out: 0.5 * jnp.sum(out**2) / 7, jnp.zeros(4), v)
    np.testing.assert_allclose(gv, np.asarray(X).T @ np.asarray(X) @ np.asarray(v) / 7, rtol=1e-12)


# ------------------------------------------------------------------------- optimisers, stability, learner


def test_train_sgd_equals_manual_loop():
    X, y, theta = _toy(n=12)
    key = jax.random.PRNGKey(4)
    got = rmt.train("sgd", theta, X, y, SIZES, 4, 2, 0.3, key)
    t = theta
    for k in jax.random.split(key, 2):
        for idx in jax.random.permutation(k, 12)[:12].reshape(3, 4):
            t = t - 0.3 * _batch_grad(t, X[idx], y[idx])
    np.testing.assert_allclose(got, t, rtol=1e-10)


def test_linear_decay_factor_closed_form():
    got = rmt.linear_decay_factor(jnp.array([0.0, 0.5, 0.7, 0.9, 0.95, 1.0]))
    np.testing.assert_allclose(got, [1.0, 1.0, 1.0 - 0.99 * 0.5, 0.01, 0.01, 0.01], rtol=1e-12)


def test_train_sgd_with_decay_equals_manual_loop():
    X, y, theta = _toy(n=12)
    key = jax.random.PRNGKey(5)
    got = rmt.train("sgd", theta, X, y, SIZES, 4, 2, 0.3, key, decay=True)
    t, step, total = theta, 0, 6
    for k in jax.random.split(key, 2):
        for idx in jax.random.permutation(k, 12)[:12].reshape(3, 4):
            p = step / total
            factor = 1.0 if p <= 0.5 else (1.0 - 0.99 * (p - 0.5) / 0.4 if p <= 0.9 else 0.01)
            t = t - 0.3 * factor * _batch_grad(t, X[idx], y[idx])
            step += 1
    np.testing.assert_allclose(got, t, rtol=1e-10)


def test_gathered_hessian_matvec_equals_masked_batch():
    X, y, theta = _toy(n=10)
    idx = jnp.array([7, 2, 5])
    mask = jnp.zeros(10).at[idx].set(1.0)
    v = jax.random.normal(jax.random.PRNGKey(3), theta.shape)
    np.testing.assert_allclose(rmt._gathered_hessian_matvec(theta, X, y, idx, SIZES)(v),
                               rmt.batch_hessian_matvec(theta, X, y, mask, SIZES)(v), rtol=1e-10, atol=1e-13)


def test_adam_first_step_is_sign_like():
    """With bias correction, Adam's first update is lr * g / (|g| + eps) per coordinate."""
    theta = jnp.zeros(3)
    g = jnp.array([0.5, -2.0, 1e-3])
    new, _ = rmt._opt_update(rmt._adam_flag("adam"), theta, g, rmt._opt_init(theta), 0.1)
    np.testing.assert_allclose(new, -0.1 * g / (jnp.abs(g) + 1e-8), rtol=1e-10)
    with pytest.raises(ValueError):
        rmt._adam_flag("rmsprop")


def test_linear_ms_max_lr_large_batch_tends_to_two_over_lambda():
    """B -> large: SGD on the quadratic is GD, stable iff lr < 2 / lambda_max (closed form)."""
    h = jnp.array([4.0, 1.0, 1.0, 0.5])
    lo, hi = rmt.linear_ms_max_lr(jax.random.PRNGKey(0), h, jnp.array([4096]), 200, 4096, 1, (1e-3, 10.0), 16)
    assert float(jnp.sqrt(lo * hi)[0]) == pytest.approx(0.5, rel=0.03)


def test_max_stable_lr_brackets_and_monotone_in_batch():
    X, y, theta = _toy(n=40)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    loss0 = float(jnp.mean(rmt.per_sample_loss(theta, X, y, SIZES)))
    lo, hi = rmt.max_stable_lr("sgd", theta, X, y, SIZES, jnp.array([1, 32]), keys, 30, 32, (1e-3, 1e3), 12,
                               loss0)
    lo, hi = np.asarray(lo), np.asarray(hi)
    assert np.all(lo < hi) and np.all(hi / lo < 1.1) and np.all(lo > 1e-3) and np.all(hi < 1e3)
    assert np.all(lo[:, 1] > hi[:, 0])  # larger batches tolerate a strictly larger rate, every seed
    # the bracket is the divergence boundary: lo keeps the loss at or below its start, hi does not
    final = lambda lr, k, B: rmt._loss_after_steps(False, theta, X, y, SIZES, B, lr, k, 30, 32)
    assert float(final(lo[0, 1], keys[0], 32)) <= loss0 < float(final(hi[0, 1], keys[0], 32))


def test_learner_recovers_polyak_on_a_known_spectrum():
    eigs = np.linspace(0.2, 5.0, 40)
    A = jnp.asarray(np.diag(eigs))
    got = rmt.lanczos_learner(lambda v: A @ v, jnp.ones(40), 40)
    lr, mom = rmt.polyak_heavy_ball(5.0, 0.2)
    np.testing.assert_allclose([got.L, got.mu, got.lr, got.momentum], [5.0, 0.2, lr, mom], rtol=1e-8)
    # heavy nodes (weight > 0.5) are excluded from mu
    h = rmt.learner_from_ritz(jnp.array([1e-4, 1.0, 3.0]), jnp.array([0.8, 0.1, 0.1]))
    assert float(h.mu) == 1.0 and float(h.L) == 3.0


def test_authors_rule_matches_its_closed_form():
    # GadamX run_ssgdmn_fastanddirty.py: lr = sqrt(mu / L), momentum = (sqrt L - sqrt mu) / (sqrt L + sqrt mu)
    h = rmt.learner_from_ritz(jnp.array([1e-4, 1.0, 16.0]), jnp.array([0.8, 0.1, 0.1]), rule="authors_nesterov")
    np.testing.assert_allclose([h.lr, h.momentum], [0.25, 3.0 / 5.0], rtol=1e-12)
    with pytest.raises(ValueError, match="unknown learner rule"):
        rmt.learner_from_ritz(jnp.array([1.0, 2.0]), jnp.array([0.5, 0.5]), rule="nesterov")


def test_learner_skips_the_null_space_of_a_rank_deficient_hessian():
    # X^T X / B with P >> B: the P - B zero eigenvalues form one heavy Ritz node that must be dropped, so mu is the
    # smallest *nonzero* eigenvalue (without the deletion mu would be ~0 and the momentum ~1)
    P, B = 400, 8
    X = jax.random.normal(jax.random.PRNGKey(3), (B, P))
    nonzero = np.linalg.eigvalsh(np.asarray(X @ X.T)) / B
    v0 = jax.random.normal(jax.random.PRNGKey(4), (P,))
    got = rmt.lanczos_learner(lambda v: X.T @ (X @ v) / B, v0, B + 1)  # Krylov space: B eigenvectors + the null node
    np.testing.assert_allclose([got.L, got.mu], [nonzero[-1], nonzero[0]], rtol=1e-6)
    kept_all = rmt.lanczos_learner(lambda v: X.T @ (X @ v) / B, v0, B + 1, drop_weight_above=1.0)
    assert float(kept_all.mu) < 1e-6 * nonzero[0]
