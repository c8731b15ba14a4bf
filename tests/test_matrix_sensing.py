"""Tests for paperlib.matrix_sensing against independent truth: dense numpy brute force, exact SVDs,
the scalar closed-form recursion of the factorisation dynamics and synthetic curves with known rates."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from paperlib import matrix_sensing as ms  # noqa: E402


@pytest.fixture(scope="module")
def small():
    """n = 5, r = 2, m = 60: a sensing problem small enough for dense numpy loops."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    truth = ms.psd_truth(k1, 5, 2, cond=2.0)
    op = ms.gaussian_sensing(k2, 60, 5, symmetric=True)
    return truth, op, k3


def _dense(op):
    A = np.asarray(op.A)
    return A.reshape(A.shape[0], -1), np.asarray(op.w)


def _numpy_sym_gd(Amat, w, y, M, X, eta, steps):
    """Symmetric GD by dense numpy products; returns the errors and the last iterate."""
    errs, n = [], M.shape[0]
    for _ in range(steps):
        errs.append(np.sum((X @ X.T - M) ** 2))
        E = (Amat.T @ (w * (Amat @ (X @ X.T).ravel() - y))).reshape(n, n)
        X = X - eta * 0.5 * (E + E.T) @ X
    errs.append(np.sum((X @ X.T - M) ** 2))
    return np.array(errs), X


def _numpy_subgm(Amat, w, y, M, U, eta0, rho, steps):
    """SubGM by dense numpy products; returns ‖U_tU_tᵀ − M*‖_F."""
    errs, n = [], M.shape[0]
    for t in range(steps):
        errs.append(np.linalg.norm(U @ U.T - M))
        Q = (Amat.T @ (w * np.sign(Amat @ (U @ U.T).ravel() - y))).reshape(n, n)
        U = U - eta0 * rho ** t * (Q + Q.T) @ U
    errs.append(np.linalg.norm(U @ U.T - M))
    return np.array(errs)


def test_forward_and_adjoint_match_dense_products():
    op = ms.gaussian_sensing(jax.random.PRNGKey(0), 40, 4, 6)
    Amat, w = _dense(op)
    rng = np.random.default_rng(0)
    M, v = rng.standard_normal((4, 6)), rng.standard_normal(40)
    np.testing.assert_allclose(ms.forward(op, jnp.asarray(M)), Amat @ M.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ms.adjoint(op, jnp.asarray(v)), (Amat.T @ (w * v)).reshape(4, 6), atol=1e-12)
    lhs = np.dot(np.asarray(ms.forward(op, jnp.asarray(M))), w * v)
    assert abs(lhs - np.sum(M * np.asarray(ms.adjoint(op, jnp.asarray(v))))) < 1e-10


def test_symmetric_sensing_is_isotropic_on_symmetric_matrices():
    """E<A, M>² = ‖M‖_F² for A = (G + Gᵀ)/2 and symmetric M (brief §2.1); Monte Carlo within 5 s.e."""
    m = 20000
    op = ms.gaussian_sensing(jax.random.PRNGKey(2), m, 6, symmetric=True)
    B = np.random.default_rng(1).standard_normal((6, 6))
    M = B + B.T
    ratio = np.mean(np.asarray(ms.forward(op, jnp.asarray(M))) ** 2) / np.sum(M * M)
    assert abs(ratio - 1) < 5 * np.sqrt(2 / m)
    assert np.allclose(op.A, np.swapaxes(op.A, 1, 2))


def test_ground_truths_have_the_requested_rank_and_condition_number():
    for truth, (n1, n2) in [(ms.psd_truth(jax.random.PRNGKey(3), 12, 3, cond=4.0), (12, 12)),
                            (ms.asymmetric_truth(jax.random.PRNGKey(4), 12, 9, 3, cond=4.0), (12, 9))]:
        s = np.linalg.svd(np.asarray(truth.M), compute_uv=False)
        assert truth.M.shape == (n1, n2)
        np.testing.assert_allclose(s[:3], [1.0, 0.625, 0.25], atol=1e-12)
        assert s[3] < 1e-12
    psd = ms.psd_truth(jax.random.PRNGKey(3), 12, 3, cond=4.0)
    assert np.min(np.linalg.eigvalsh(np.asarray(psd.M))) > -1e-12


def test_symmetric_gd_matches_a_numpy_loop(small):
    truth, op, key = small
    Amat, w = _dense(op)
    y = np.asarray(ms.forward(op, truth.M))
    X = np.asarray(ms.small_init(key, 5, 3, 0.3))
    out = ms.symmetric_gd(op, jnp.asarray(y), truth, jnp.asarray(X), 0.2, 25)
    errs, X = _numpy_sym_gd(Amat, w, y, np.asarray(truth.M), X, 0.2, 25)
    np.testing.assert_allclose(out.err, errs, rtol=1e-10)
    np.testing.assert_allclose(out.X, X, atol=1e-12)


def test_identity_factorisation_follows_the_scalar_closed_form():
    """M* = diag(1, 0), X0 = diag(a, b): x₁ ← x₁ − η(x₁² − 1)x₁, x₂ ← x₂ − ηx₂³ (brief §3, C2)."""
    truth = ms.Truth(jnp.diag(jnp.array([1.0, 0.0])), jnp.array([[1.0], [0.0]]), jnp.array([[1.0], [0.0]]),
                     jnp.array([1.0]))
    eta, a, b, T = 0.2, 0.1, 0.3, 400
    out = ms.symmetric_gd(None, truth.M, truth, jnp.diag(jnp.array([a, b])), eta, T)
    errs, j2 = [], []
    for _ in range(T + 1):
        errs.append((a * a - 1) ** 2 + b ** 4)
        j2.append(b * b)
        a, b = a - eta * (a * a - 1) * a, b - eta * b ** 3
    np.testing.assert_allclose(out.err, errs, rtol=1e-10)
    np.testing.assert_allclose(out.j_norm2, j2, rtol=1e-10)


def test_zero_padded_columns_stay_zero_so_k_can_be_vmapped(small):
    truth, op, key = small
    y = ms.forward(op, truth.M)
    X0s = jnp.stack([ms.small_init(key, 5, 4, 0.2, k) for k in (2, 3, 4)])
    batch = ms.symmetric_gd_batch(op, y, truth, X0s, 0.2, 30)
    assert np.all(np.asarray(batch.X[0, :, 2:]) == 0) and np.all(np.asarray(batch.X[1, :, 3:]) == 0)
    alone, _ = _numpy_sym_gd(*_dense(op), np.asarray(y), np.asarray(truth.M),
                             np.asarray(X0s[1][:, :3]), 0.2, 30)
    np.testing.assert_allclose(batch.err[1], alone, rtol=1e-10)


def test_normal_operator_and_direct_residuals_agree_with_dense_numpy(small):
    """Both paths of the GD residual map (𝒜*𝒜 formed once, or 𝒜 then 𝒜*) on noisy y."""
    truth, op, key = small
    Amat, w = _dense(op)
    y = np.asarray(ms.forward(op, truth.M)) + 0.1
    P = np.asarray(ms.small_init(key, 5, 5, 1.0))
    r = Amat @ P.ravel() - y
    for normal in (True, False):
        E, observed = ms._residual_map(op, jnp.asarray(y), normal)(jnp.asarray(P))
        np.testing.assert_allclose(E, (Amat.T @ (w * r)).reshape(5, 5), rtol=1e-10, atol=1e-12)
        assert float(observed) == pytest.approx(np.sum(w * r * r), rel=1e-10)


def test_asymmetric_gd_matches_a_numpy_loop():
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(5), 4)
    truth = ms.asymmetric_truth(k1, 5, 4, 2, cond=2.0)
    op = ms.gaussian_sensing(k2, 70, 5, 4)
    Amat, w = _dense(op)
    y = np.asarray(ms.forward(op, truth.M))
    F, G = np.asarray(ms.small_init(k3, 5, 3, 0.3)), np.asarray(ms.small_init(k4, 4, 3, 0.1))
    out = ms.asymmetric_gd(op, jnp.asarray(y), truth, jnp.asarray(F), jnp.asarray(G), 0.2, 20)
    M, errs = np.asarray(truth.M), []
    for _ in range(20):
        errs.append(np.sum((F @ G.T - M) ** 2))
        E = (Amat.T @ (w * (Amat @ (F @ G.T).ravel() - y))).reshape(5, 4)
        F, G = F - 0.2 * E @ G, G - 0.2 * E.T @ F
    errs.append(np.sum((F @ G.T - M) ** 2))
    np.testing.assert_allclose(out.err, errs, rtol=1e-10)
    assert int(out.switch_step) == -1 and float(out.product_change) == 0.0


def test_rebalance_keeps_the_product_and_sets_sigma_min_of_F():
    rng = np.random.default_rng(3)
    F, G = rng.standard_normal((8, 4)) * [1, 0.5, 0.05, 0.01], rng.standard_normal((7, 4))
    F2, G2 = (np.asarray(x) for x in ms.rebalance(jnp.asarray(F), jnp.asarray(G), 0.7))
    np.testing.assert_allclose(F2 @ G2.T, F @ G.T, atol=1e-12)
    np.testing.assert_allclose(F2.T @ F2, 0.49 * np.eye(4), atol=1e-12)


def test_rebalancing_fires_once_on_the_observable_residual(small):
    truth, op, key = small
    y = ms.forward(op, truth.M)
    F0, G0 = ms.small_init(key, 5, 3, 0.3), ms.small_init(jax.random.fold_in(key, 1), 5, 3, 0.1)
    out = ms.asymmetric_gd(op, y, truth, F0, G0, 0.2, 400, switch_below=1e-3, c=1.0)
    plain = ms.asymmetric_gd(op, y, truth, F0, G0, 0.2, 400)
    t = int(out.switch_step)
    assert 0 < t < 400 and float(out.product_change) < 1e-12
    np.testing.assert_allclose(out.err[: t + 1], plain.err[: t + 1], rtol=1e-12)
    Amat, w = _dense(op)
    F, G, y, observed = np.asarray(F0), np.asarray(G0), np.asarray(y), []
    for _ in range(t + 1):  # numpy GD: the observable residual first falls below 1e-3 at step t
        r = Amat @ (F @ G.T).ravel() - y
        observed.append(np.sum(w * r * r))
        E = (Amat.T @ (w * r)).reshape(5, 5)
        F, G = F - 0.2 * E @ G, G - 0.2 * E.T @ F
    assert observed[t] < 1e-3 <= min(observed[:t])


def test_subgradient_method_matches_a_numpy_loop_and_masks_match_truncation(small):
    truth, op, key = small
    Amat, w = _dense(op)
    y = np.asarray(ms.forward(op, truth.M)) + np.asarray(ms.outlier_noise(key, 60, 0.2, 30.0))
    U = np.asarray(ms.small_init(key, 5, 3, 0.01))
    M = np.asarray(truth.M)
    out = ms.subgradient_method(op, jnp.asarray(y), truth, jnp.asarray(U), 0.1, 0.98, 30)
    np.testing.assert_allclose(out.err, _numpy_subgm(Amat, w, y, M, U, 0.1, 0.98, 30), rtol=1e-10)
    trunc = _numpy_subgm(Amat[:40], np.full(40, 1 / 40), y[:40], M, U, 0.1, 0.98, 30)
    masked = ms.subgradient_batch(op, jnp.asarray(y)[None], truth, jnp.asarray(U)[None], [0.1],
                                  [0.98], 30, weights=ms.use_first(op, 40).w[None])
    np.testing.assert_allclose(masked.err[0], trunc, rtol=1e-10)


def test_noise_models_hit_the_requested_fraction():
    m = 20000
    for noise in (ms.outlier_noise(jax.random.PRNGKey(6), m, 0.3, 5.0),
                  ms.gaussian_noise(jax.random.PRNGKey(7), m, 0.3, 1.0)):
        frac = np.mean(np.asarray(noise) != 0)
        assert abs(frac - 0.3) < 5 * np.sqrt(0.3 * 0.7 / m)
    assert np.max(np.abs(ms.outlier_noise(jax.random.PRNGKey(6), m, 0.3, 5.0))) <= 5.0


def test_rate_helpers_recover_known_rates():
    t = np.arange(3000)
    assert abs(ms.tail_rate(np.exp(-0.05 * t), 1e-26, 1e-2) - 0.05) < 1e-12
    a, b = ms.half_window_rates(np.exp(-0.05 * t), 1e-26, 1e-2)
    assert abs(a - b) < 1e-12
    eta = 0.2
    assert abs(ms.inverse_sqrt_slope((3.0 + 2 * eta * t) ** -2.0, 1000) - 2 * eta) < 1e-12
    assert ms.sublinear_slope_closed_form(0.2, 4, 2) == pytest.approx(0.4 / np.sqrt(2))


def test_first_hit_by_brute_force():
    err = np.array([1.0, 0.7, 0.2, 0.3, 0.09, 0.05])
    assert ms.first_hit(err, 0.1) == 4 and ms.first_hit(err, 0.2) == 2 and ms.first_hit(err, 1e-3) == -1


def test_tail_rates_over_runs_and_psd_problem_is_truth_operator_and_clean_measurements():
    t = np.arange(500.0)
    err = np.exp(-np.array([[0.1], [0.2]]) * t)
    np.testing.assert_allclose(ms.tail_rates(err[None], 1e-20, 1e-2), [[0.1, 0.2]], rtol=1e-10)
    k1, k2 = jax.random.split(jax.random.PRNGKey(8))
    truth, op, y = ms.psd_problem(k1, k2, 5, 2, 60, 2.0)  # the shapes of ``small``: no new compiles
    np.testing.assert_array_equal(truth.M, ms.psd_truth(k1, 5, 2, 2.0).M)
    np.testing.assert_array_equal(op.A, ms.gaussian_sensing(k2, 60, 5, symmetric=True).A)
    np.testing.assert_allclose(y, np.asarray(op.A).reshape(60, -1) @ np.asarray(truth.M).ravel(),
                               rtol=1e-10)


@pytest.mark.parametrize("call", [
    lambda: ms.gaussian_sensing(jax.random.PRNGKey(0), 0, 3),
    lambda: ms.gaussian_sensing(jax.random.PRNGKey(0), 5, 3, 4, symmetric=True),
    lambda: ms.psd_truth(jax.random.PRNGKey(0), 3, 4),
    lambda: ms.spectrum(2, 0.5),
    lambda: ms.outlier_noise(jax.random.PRNGKey(0), 5, 1.5, 1.0),
    lambda: ms.small_init(jax.random.PRNGKey(0), 5, 3, 0.1, k=4),
    lambda: ms.small_init(jax.random.PRNGKey(0), 5, 3, -0.1),
    lambda: ms.tail_rate(np.ones(5), 1e-3, 1e-1),
    lambda: ms.sublinear_slope_closed_form(0.2, 2, 2),
])
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
