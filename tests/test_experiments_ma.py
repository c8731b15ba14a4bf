"""Tests for paperlib.experiments.ma against independent truth: quadrature of the Sign-RIP
expectation, numpy loops on truncated operators, brute-force thresholds and parameter counts."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate, stats  # noqa: E402

from paperlib import matrix_sensing as ms  # noqa: E402
from paperlib.experiments import ma as ex  # noqa: E402


@pytest.mark.parametrize("p, nu, size", [(0.0, 1.0, 1.0), (0.3, 1.0, 1.0), (0.3, 10.0, 0.5),
                                         (1.0, 2.0, 1.0)])
def test_phi_matches_quadrature(p, nu, size):
    """E[sign(g − s) g]/‖X‖ for g ~ N(0, ‖X‖²), s = 0 w.p. 1 − p and N(0, ν²) w.p. p: the inner mean
    over g is 2‖X‖² pdf(s; ‖X‖) (integration by parts), the outer one over s by quadrature."""
    inner = lambda s: 2 * size ** 2 * stats.norm.pdf(s, scale=size)  # noqa: E731
    dirty = integrate.quad(lambda s: inner(s) * stats.norm.pdf(s, scale=nu), -np.inf, np.inf)[0]
    expected = ((1 - p) * inner(0.0) + p * dirty) / size
    assert ex.phi_closed_form(p, nu, size) == pytest.approx(expected, abs=1e-9)
    g = np.linspace(-12 * size, 12 * size, 400001)  # the inner identity itself, on a grid
    assert np.trapezoid(np.sign(g - 0.3) * g * stats.norm.pdf(g, scale=size), g) == pytest.approx(
        inner(0.3), abs=1e-4)  # the jump of sign on the grid costs ~1e-5


def test_signrip_terms_average_to_phi():
    cases = [(0.0, 1.0, 1.0), (0.5, 3.0, 1.0)]
    terms = ex.signrip_terms(jax.random.PRNGKey(0), 20000, 4, cases)
    se = terms.std(0, ddof=1) / np.sqrt(terms.shape[0])
    assert np.all(np.abs(terms.mean(0) - ex.phi_closed_form(*np.array(cases).T)) < 4 * se)


def test_instance_thresholds_by_brute_force():
    grid = [10, 20, 30, 40]
    rel = np.array([[0.5, 1e-9, 0.5, 1e-9],   # fails at 30: threshold 40
                    [1e-9, 1e-9, 1e-9, 1e-9],  # 10
                    [0.5, 0.5, 0.5, 0.5]])    # never: censored at 50
    np.testing.assert_array_equal(ex.instance_thresholds(rel, grid, 1e-6, 50.0), [40, 10, 50])
    np.testing.assert_array_equal(ex.instance_thresholds(rel[None], grid, 1.0, 50.0),
                                  [[10, 10, 10]])


def test_psd_parameters_count_a_full_psd_matrix_and_rank_one():
    for d in (3, 7, 20):
        assert ex.psd_parameters(d, d) == d * (d + 1) // 2
        assert ex.psd_parameters(d, 1) == d


def test_sample_sweep_matches_subgm_on_truncated_operators():
    key = jax.random.PRNGKey(2)
    rel = ex.sample_sweep(key, d=4, r=1, cond=1.0, ranks=[1, 2], m_grid=[20, 40], instances=2,
                          p_out=0.2, outlier_scale=5.0, alpha=1e-2, eta0=0.1, rho=0.98, steps=40)
    inst = ex.make_instance(jax.random.fold_in(key, 1), 4, 1, 40, 1.0, 0.2, 5.0, 0.0, 0.0)
    y = np.asarray(inst.y0 + inst.s_out)[:20]
    A = np.asarray(inst.op.A)[:20].reshape(20, -1)
    U = np.asarray(ms.small_init(inst.key, 4, 2, 1e-2, 2))
    for t in range(40):
        Q = (A.T @ (np.sign(A @ (U @ U.T).ravel() - y) / 20)).reshape(4, 4)
        U = U - 0.1 * 0.98 ** t * (Q + Q.T) @ U
    M = np.asarray(inst.truth.M)
    assert rel[1, 1, 0] == pytest.approx(np.linalg.norm(U @ U.T - M) / np.linalg.norm(M), rel=1e-9)


def test_dense_noise_loss_at_the_truth_is_the_mean_absolute_noise():
    inst = ex.make_instance(jax.random.PRNGKey(4), 5, 1, 200, 1.0, 0.0, 1.0, 0.0, 0.0)
    out = ex.dense_noise(inst, [0.5, 1.0], 0.5, 1e-2, 0.1, 0.98, 50, 0.01, 0.99)
    noise = [np.asarray(ms.gaussian_noise(jax.random.fold_in(inst.key, 50 + j), 200, p, 0.5))
             for j, p in enumerate([0.5, 1.0])]
    np.testing.assert_allclose(out["f_star"], [np.mean(np.abs(s)) for s in noise], rtol=1e-10)
    U = np.asarray(inst.truth.U * jnp.sqrt(inst.truth.s))
    assert ex.l1_loss(inst.op, inst.y0, jnp.asarray(U)) < 1e-12


def test_l2_runs_match_a_numpy_least_squares_loop():
    inst = ex.make_instance(jax.random.PRNGKey(5), 4, 1, 60, 1.0, 0.2, 3.0, 0.0, 0.0)
    y = np.asarray(inst.y0 + inst.s_out)
    out = ex.l2_runs(inst, jnp.asarray(y)[None], 1, 0.1, 0.2, 20)
    A, M = np.asarray(inst.op.A).reshape(60, -1), np.asarray(inst.truth.M)
    U = np.asarray(ms.small_init(inst.key, 4, 1, 0.1))
    for _ in range(20):
        E = (A.T @ ((A @ (U @ U.T).ravel() - y) / 60)).reshape(4, 4)
        U = U - 0.2 * 0.5 * (E + E.T) @ U
    assert out[0, -1] == pytest.approx(np.linalg.norm(U @ U.T - M), rel=1e-9)
