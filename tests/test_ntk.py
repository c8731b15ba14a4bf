"""paperlib.ntk against independent truth: adaptive 2-D quadrature (scipy), hand recursions, autodiff
Jacobians, Monte Carlo over finite networks, finite differences, ODE integration, dense eigen-solvers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special
from scipy.integrate import solve_ivp

from paperlib import ntk, stats

jax.config.update("jax_enable_x64", True)


def _dblquad_expectation(f, a, b, c):
    """E[f(u) f(v)] for (u, v) ~ N(0, [[a, c], [c, b]]) by scipy's adaptive quadrature in (z1, z2)."""
    l11 = math.sqrt(a)
    l21 = c / l11
    l22 = math.sqrt(max(b - l21 ** 2, 0.0))

    def g(z2, z1):
        return f(l11 * z1) * f(l21 * z1 + l22 * z2) * math.exp(-(z1 * z1 + z2 * z2) / 2) / (2 * math.pi)

    # split at z1 = 0 and at the kink of v so the adaptive rule sees smooth pieces
    kink = (lambda z1: -l21 * z1 / l22) if l22 > 0 else None
    total = 0.0
    for lo, hi in ((-10.0, 0.0), (0.0, 10.0)):
        if kink is None:
            total += integrate.dblquad(g, lo, hi, -10, 10, epsabs=1e-13, epsrel=1e-12)[0]
        else:
            total += integrate.dblquad(g, lo, hi, -10, kink, epsabs=1e-13, epsrel=1e-12)[0]
            total += integrate.dblquad(g, lo, hi, kink, 10, epsabs=1e-13, epsrel=1e-12)[0]
    return total


RELU = lambda z: max(z, 0.0)
STEP = lambda z: float(z > 0)
ERF = special.erf
DERF = lambda z: 2 / math.sqrt(math.pi) * math.exp(-z * z)


@pytest.mark.parametrize("a, b, c", [(0.51, 0.51, 0.3), (1.2, 0.4, -0.5), (0.3, 2.0, 0.7)])
def test_closed_forms_match_adaptive_quadrature(a, b, c):
    e, ed = ntk.closed_form_expectations("relu", a, b, c)
    assert float(e) == pytest.approx(_dblquad_expectation(RELU, a, b, c), abs=1e-9)
    assert float(ed) == pytest.approx(_dblquad_expectation(STEP, a, b, c), abs=1e-9)
    e, ed = ntk.closed_form_expectations("erf", a, b, c)
    assert float(e) == pytest.approx(_dblquad_expectation(ERF, a, b, c), abs=1e-9)
    assert float(ed) == pytest.approx(_dblquad_expectation(DERF, a, b, c), abs=1e-9)


def test_quadrature_paths_match_closed_forms():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.05, 3.0, 200), rng.uniform(0.05, 3.0, 200)
    c = rng.uniform(-1, 1, 200) * np.sqrt(a * b)
    c[:5] = np.sqrt(a[:5] * b[:5])  # perfectly correlated pairs
    for name in ("relu", "identity", "quadratic"):
        for got, want in zip(ntk.polar_expectations(name, a, b, c), ntk.closed_form_expectations(name, a, b, c)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    for got, want in zip(ntk.gauss_hermite_expectations("erf", a, b, c, deg=160),
                         ntk.closed_form_expectations("erf", a, b, c)):
        np.testing.assert_allclose(got, want, atol=1e-11)


def test_hand_recursion_on_the_circle():
    # diagonal by hand: Sigma = .51, .265, .1425, .08125; Theta = ((.51/2 + .265)/2 + .1425)/2 + .08125
    k = ntk.kernels(jnp.array([[1.0, 0.0]]), depth=4, beta=0.1)
    assert float(k.nngp[0, 0]) == pytest.approx(0.08125, abs=1e-15)
    assert float(k.ntk[0, 0]) == pytest.approx(0.2825, abs=1e-15)
    x = jax.random.normal(jax.random.key(0), (6, 5))
    k1 = ntk.kernels(x, depth=1, beta=0.3)
    np.testing.assert_allclose(k1.nngp, x @ x.T / 5 + 0.09, atol=1e-14)
    np.testing.assert_allclose(k1.ntk, k1.nngp)
    # identity sigma: Sigma(l) = Sigma(1) + (l-1) beta^2 and Theta(L) = sum_l Sigma(l)
    kid = ntk.kernels(x, depth=3, beta=0.3, nonlin="identity")
    s1 = np.asarray(k1.nngp)
    np.testing.assert_allclose(kid.nngp, s1 + 2 * 0.09, atol=1e-14)
    np.testing.assert_allclose(kid.ntk, 3 * s1 + 3 * 0.09, atol=1e-13)
    # all_depths stacks the same recursion
    st = ntk.kernels(x, depth=3, beta=0.3, all_depths=True)
    np.testing.assert_allclose(st.ntk[0], k1.ntk)
    np.testing.assert_allclose(st.ntk[2], ntk.kernels(x, depth=3, beta=0.3).ntk)


def test_kernels_quadrature_rows_in_batches():
    x = ntk.circle(jnp.linspace(0, 2 * np.pi, 13))
    a = ntk.kernels(x, depth=3, nonlin="tanh", method="quadrature", deg=48)
    b = ntk.kernels(x, depth=3, nonlin="tanh", method="quadrature", deg=48, row_batch=4)
    np.testing.assert_allclose(a.ntk, b.ntk, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(np.asarray(a.ntk)) > -1e-12)


@pytest.mark.parametrize("nonlin", ["relu", "tanh", "erf"])
def test_backprop_ntk_equals_jacobian_contraction(nonlin):
    p = ntk.init_params(jax.random.key(1), [3, 16, 16, 16, 1])
    x1 = jax.random.normal(jax.random.key(2), (5, 3))
    x2 = jax.random.normal(jax.random.key(3), (4, 3))
    backprop = jax.jit(ntk.empirical_ntk, static_argnums=(4,))  # one compile each, not op by op
    jacobian = jax.jit(ntk.empirical_ntk_jacobian, static_argnums=(4,))
    np.testing.assert_allclose(backprop(p, x1, x2, 0.1, nonlin), jacobian(p, x1, x2, 0.1, nonlin),
                               atol=1e-12)
    np.testing.assert_allclose(backprop(p, x1, None, 0.1, nonlin), jacobian(p, x1, x1, 0.1, nonlin),
                               atol=1e-12)


def test_init_is_standard_normal_and_forward_matches_formula():
    widths = [2, 300, 200, 1]
    p = ntk.init_params(jax.random.key(4), widths)
    z = np.concatenate([np.ravel(t) for layer in p for t in layer])
    assert z.size == ntk.num_params(widths)
    assert abs(z.mean()) < 5 / math.sqrt(z.size) and abs(z.var() - 1) < 5 * math.sqrt(2 / z.size)
    x = jnp.array([[0.3, -1.2]])
    h = np.maximum(np.asarray(x) @ np.asarray(p[0][0]).T / math.sqrt(2) + 0.1 * np.asarray(p[0][1]), 0)
    h = np.maximum(h @ np.asarray(p[1][0]).T / math.sqrt(300) + 0.1 * np.asarray(p[1][1]), 0)
    f = h @ np.asarray(p[2][0]).T / math.sqrt(200) + 0.1 * np.asarray(p[2][1])
    np.testing.assert_allclose(ntk.apply(p, x, 0.1), f, rtol=1e-12)


def test_monte_carlo_two_layer_kernels_are_unbiased_at_any_width():
    # L = 2: the first-layer pre-activations are exactly Gaussian, so E[f f'] = Sigma(2) and
    # E[Theta_hat] = Theta(2) hold at every width; 4000 networks of width 32
    x = ntk.circle(jnp.array([0.0, 2.0, 3.0]))
    k = ntk.kernels(x, depth=2, beta=0.1)
    f, th = ntk.init_ensemble(jax.random.split(jax.random.key(5), 4000), x, widths=(2, 32, 1), batch_size=500)
    f, th = np.asarray(f), np.asarray(th)
    m, se = stats.mean_and_se(f[:, :, None] * f[:, None, :])
    assert np.all(np.abs(m - k.nngp) < 4 * se)
    m, se = stats.mean_and_se(th)
    assert np.all(np.abs(m - k.ntk) < 4 * se)


def test_monte_carlo_deep_wide_ntk():
    x = ntk.circle(jnp.array([0.0, 1.5]))
    k = ntk.kernels(x, depth=3, beta=0.1)
    _, th = ntk.init_ensemble(jax.random.split(jax.random.key(6), 200), x, widths=(2, 256, 256, 1), batch_size=50)
    m, se = stats.mean_and_se(np.asarray(th))
    assert np.all(np.abs(m - k.ntk) < 4 * se)


def test_gd_step_matches_finite_differences():
    widths = [2, 4, 3, 1]
    p = ntk.init_params(jax.random.key(7), widths)
    x = jax.random.normal(jax.random.key(8), (6, 2))
    y = jnp.sin(x[:, 0])
    leaves, tree = jax.tree_util.tree_flatten(p)
    flat = np.concatenate([np.ravel(t) for t in leaves])

    def unflat(v):
        out, i = [], 0
        for t in leaves:
            out.append(jnp.asarray(v[i:i + t.size].reshape(t.shape)))
            i += t.size
        return jax.tree_util.tree_unflatten(tree, out)

    h = 1e-6
    loss = jax.jit(ntk.loss)
    grad_fd = np.array([(float(loss(unflat(flat + h * e), x, y)) - float(loss(unflat(flat - h * e), x, y))) / (2 * h)
                        for e in np.eye(flat.size)])
    stepped = ntk.train(p, x, y, lr=0.5, steps=1).params
    got = np.concatenate([np.ravel(t) for t in jax.tree_util.tree_leaves(stepped)])
    np.testing.assert_allclose(got, flat - 0.5 * grad_fd, atol=1e-8)


def test_one_gd_step_is_kernel_gd_with_the_current_ntk():
    # Delta f = -lr/N Theta (f - y) + O(lr^2): the error falls by 4 when lr halves
    p = ntk.init_params(jax.random.key(9), [2, 64, 64, 1])
    x = jax.random.normal(jax.random.key(10), (8, 2))
    y = x[:, 0] * x[:, 1]
    f = ntk.apply(p, x)[:, 0]
    th = ntk.empirical_ntk(p, x)
    errs = []
    step = jax.jit(ntk.gd_step)
    for lr in (0.2, 0.1, 0.05):
        df = ntk.apply(step(p, x, y, lr), x)[:, 0] - f
        errs.append(float(jnp.linalg.norm(df + lr / 8 * th @ (f - y))))
    assert 3.0 < errs[0] / errs[1] < 5.0 and 3.0 < errs[1] / errs[2] < 5.0


def _random_psd(key, n):
    a = jax.random.normal(key, (n, n + 3))
    return a @ a.T / (n + 3) + 0.1 * jnp.eye(n)


def test_kernel_gradient_flow_matches_ode_and_discrete_iteration():
    n, m = 7, 3
    K = _random_psd(jax.random.key(11), n + m)
    ktt, kxt = K[:n, :n], K[n:, :n]
    y = jax.random.normal(jax.random.key(12), (n,))
    f0 = jax.random.normal(jax.random.key(13), (n + m,))

    # d/dt f(x) = (1/N) K(x, X) (y - f(X)) on data and test points together
    def rhs(_, f):
        return np.asarray(K[:, :n]) @ (np.asarray(y) - f[:n]) / n

    t = 3.7
    sol = solve_ivp(rhs, (0, t), np.asarray(f0), rtol=1e-11, atol=1e-12).y[:, -1]
    got = ntk.kernel_predict(ktt, kxt, y, f0[:n], f0[n:], t=t)
    np.testing.assert_allclose(got, sol[n:], atol=1e-8)
    np.testing.assert_allclose(y + ntk.gd_residual(ktt, f0[:n] - y, t=t), sol[:n], atol=1e-8)
    # discrete GD, 25 steps of lr 0.9, by explicit iteration
    f = np.asarray(f0)
    for _ in range(25):
        f = f + 0.9 * np.asarray(K[:, :n]) @ (np.asarray(y) - f[:n]) / n
    np.testing.assert_allclose(ntk.kernel_predict(ktt, kxt, y, f0[:n], f0[n:], lr=0.9, steps=25), f[n:], atol=1e-12)
    # t = infinity: ridgeless kernel regression
    np.testing.assert_allclose(ntk.kernel_predict(ktt, kxt, y), kxt @ np.linalg.solve(ktt, y), atol=1e-10)


def test_trained_gaussian_equals_linear_map_of_the_prior():
    # f_t = f_0 + Theta(., X) A (y - f_0(X)) is linear in f_0 ~ N(0, Sigma): push the joint covariance
    n, m = 5, 4
    theta = _random_psd(jax.random.key(14), n + m)
    sigma = _random_psd(jax.random.key(15), n + m)
    y = jax.random.normal(jax.random.key(16), (n,))
    t = 2.0
    g = ntk.trained_gaussian(theta[:n, :n], theta[n:, :n], sigma[:n, :n], sigma[n:, :n], sigma[n:, n:], y, t=t, diag=False)
    lam, v = np.linalg.eigh(np.asarray(theta[:n, :n]))
    a = v @ np.diag((1 - np.exp(-t * lam / n)) / lam) @ v.T
    ka = np.asarray(theta[n:, :n]) @ a
    P = np.concatenate([-ka, np.eye(m)], axis=1)  # f_t(x) = P f_0 + ka y
    np.testing.assert_allclose(g.mean, ka @ np.asarray(y), atol=1e-12)
    np.testing.assert_allclose(g.cov, P @ np.asarray(sigma) @ P.T, atol=1e-12)
    gd = ntk.trained_gaussian(theta[:n, :n], theta[n:, :n], sigma[:n, :n], sigma[n:, :n], jnp.diagonal(sigma[n:, n:]), y, t=t)
    np.testing.assert_allclose(gd.cov, np.diag(P @ np.asarray(sigma) @ P.T), atol=1e-12)
    # t = infinity: zero variance on the training points
    g0 = ntk.trained_gaussian(theta[:n, :n], theta[:n, :n], sigma[:n, :n], sigma[:n, :n], jnp.diagonal(sigma[:n, :n]), y)
    assert np.max(np.abs(g0.cov)) < 1e-10 and np.allclose(g0.mean, y, atol=1e-10)


def test_linearised_split_is_the_trained_taylor_model_and_its_prior_part_is_odd():
    # independent route: GD on the first-order Taylor model f0 + J (theta - theta0), J by jax.jvp
    widths, lr, steps = [2, 16, 16, 16, 1], 1.0, 40
    p0 = ntk.init_params(jax.random.key(21), widths)
    x = ntk.circle(jnp.array([-2.5, -1.0, 0.5, 2.0]))
    y = x[:, 0] * x[:, 1]
    xt = ntk.circle(jnp.array([np.pi, 0.2]))
    f_lin = lambda d, xx: jax.jvp(lambda q: ntk.apply(q, xx)[:, 0], (p0,), (d,))[1] + ntk.apply(p0, xx)[:, 0]
    cost = lambda d: 0.5 * jnp.mean((f_lin(d, x) - y) ** 2)
    d = jax.tree_util.tree_map(jnp.zeros_like, p0)
    step = jax.jit(lambda d: jax.tree_util.tree_map(lambda a, g: a - lr * g, d, jax.grad(cost)(d)))
    for _ in range(steps):
        d = step(d)
    th = ntk.empirical_ntk(p0, jnp.concatenate([x, xt]))
    f0 = ntk.apply(p0, jnp.concatenate([x, xt]))[:, 0]
    split = ntk.linearised_split(th[:4, :4], th[4:, :4], f0[:4], f0[4:], y, lr=lr, steps=steps)
    np.testing.assert_allclose(split.kernel_part + split.prior_part, f_lin(d, xt), atol=1e-12)
    # negating the last layer: same NTK, f0 -> -f0, so the prior part flips sign exactly
    p1 = p0[:-1] + [(-p0[-1][0], -p0[-1][1])]
    th1 = ntk.empirical_ntk(p1, jnp.concatenate([x, xt]))
    np.testing.assert_allclose(th1, th, atol=1e-14)
    split1 = ntk.linearised_split(th1[:4, :4], th1[4:, :4], -f0[:4], -f0[4:], y, lr=lr, steps=steps)
    np.testing.assert_allclose(split1.prior_part, -split.prior_part, atol=1e-14)
    np.testing.assert_allclose(split1.kernel_part, split.kernel_part, atol=1e-14)


def test_circulant_spectrum_and_rank():
    x = ntk.circle(2 * np.pi * np.arange(32) / 32)
    gram = np.asarray(ntk.kernels(x, depth=3).ntk)
    np.testing.assert_allclose(np.sort(ntk.circulant_spectrum(gram[0])), np.linalg.eigvalsh(gram), atol=1e-12)
    assert ntk.numerical_rank(ntk.circulant_spectrum(np.asarray(ntk.kernels(x[:1], x, depth=3, nonlin="identity").ntk[0]))) == 3


def test_fit_decay_rates_recovers_eigenvalues_of_kernel_gd():
    K = _random_psd(jax.random.key(17), 12)
    sp = ntk.kernel_pcs(K)
    lam, V = np.asarray(sp.eigenvalues), np.asarray(sp.eigenvectors)
    np.testing.assert_allclose(np.asarray(K) / 12 @ V[:, 0], lam[0] * V[:, 0], atol=1e-12)
    r0 = V[:, :3] @ np.array([0.3, -0.2, 0.5])
    res = np.stack([V @ ((1 - 2.0 * lam) ** k * (V.T @ r0)) for k in range(200)])
    np.testing.assert_allclose(ntk.gd_residual(K, r0, lr=2.0, steps=37), res[37], atol=1e-14)
    rates, _ = ntk.fit_decay_rates(res, V, 2.0, range(3), lam)
    np.testing.assert_allclose(rates, lam[:3], rtol=1e-8)


def test_ensemble_matches_single_networks_and_shifted_targets():
    keys = jax.random.split(jax.random.key(18), 2)
    x = jax.random.normal(jax.random.key(19), (5, 2))
    shift = jnp.linspace(-0.3, 0.3, 5)
    r = ntk.ensemble(keys, x, shift, x, x[:1], x, widths=(2, 8, 8, 1), lr=0.7, steps=3, record=True,
                     with_ntk=True, shift_target=True, batch_size=2)
    @jax.jit  # one network by hand, one compiled program (no vmap, no lax.map)
    def single(k):
        p = ntk.init_params(k, [2, 8, 8, 1])
        f0 = ntk.apply(p, x)[:, 0]
        tr = ntk.train(p, x, f0 + shift, lr=0.7, steps=3, record=True)
        fT = ntk.apply(tr.params, x)[:, 0]
        return f0, tr.train_outputs, fT, ntk.empirical_ntk(tr.params, x[:1], x)

    for s, k in enumerate(keys):
        f0, outs, fT, ntkT = single(k)
        np.testing.assert_allclose(r.f0[s], f0, atol=1e-12)
        np.testing.assert_allclose(r.train_outputs[s], outs, atol=1e-12)
        np.testing.assert_allclose(r.fT[s], fT, atol=1e-12)
        np.testing.assert_allclose(r.ntkT[s], ntkT, atol=1e-12)


def test_statistics_helpers():
    assert stats.loglog_slope([1, 2, 4, 8], [3, 1.5, 0.75, 0.375]) == pytest.approx(-1.0)
    s = np.random.default_rng(1).normal(size=20000)
    v, se = stats.variance_and_se(s)
    assert v == pytest.approx(np.var(s, ddof=1)) and se == pytest.approx(math.sqrt(2 / 20000), rel=0.05)
    with pytest.raises(ValueError):
        ntk.nonlinearity("gelu")
    with pytest.raises(ValueError):
        ntk.closed_form_expectations("tanh", 1.0, 1.0, 0.5)


def test_loglog_slope_over_runs_recovers_power_law_and_its_standard_error():
    """Per-network values c n^-a (1 + noise): the slope is -a and its s.e. matches the spread of the
    slope over independent repetitions; power = 0.5 gives the slope of a root-mean-square."""
    rng = np.random.default_rng(0)
    widths = [100, 400, 1600]
    reps = []
    for _ in range(400):
        samples = [2.0 * n ** -1.0 * (1 + 0.3 * rng.standard_normal(12)) for n in widths]
        reps.append(stats.loglog_slope_over_runs(widths, samples))
    slopes, ses = np.array([r[0] for r in reps]), np.array([r[1] for r in reps])
    assert abs(slopes.mean() + 1.0) < 0.01
    assert np.std(slopes) == pytest.approx(np.median(ses), rel=0.15)
    assert reps[0][2] == 12
    sq = [n ** -1.0 * np.ones(3) + 1e-9 * np.arange(3) for n in widths]
    assert stats.loglog_slope_over_runs(widths, sq, power=0.5)[0] == pytest.approx(-0.5, abs=1e-6)
