"""Tests for paperlib.perceptron against independent truth: plain-numpy loops, closed forms and the
numbers printed in Tyurin (2024), arXiv 2412.08424."""

import jax

jax.config.update("jax_enable_x64", True)

import math  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

from paperlib import perceptron as P  # noqa: E402
from paperlib.datasets import digits_pair, planted_margin  # noqa: E402


@pytest.fixture(scope="module")
def small_Z():
    """40 separable points in R^5 whose mean is offset from the origin, so that (without intercept)
    the methods need several steps: separation at t = 4..21 for the settings used below."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)) + np.array([2.0, 1.0, 0.0, 0.0, 0.0])
    w_star = rng.standard_normal(5)
    s = X @ (w_star / np.linalg.norm(w_star))
    keep = np.abs(s) > 0.05
    return np.sign(s[keep][:40])[:, None] * X[keep][:40]


@pytest.fixture(scope="module")
def digits_Z():
    return np.asarray(P.signed_samples(*digits_pair(3, 8)))


@pytest.fixture(scope="module")
def worst_Z():
    return np.asarray(P.signed_samples(*P.worst_case_dataset(1000)))


# --------------------------------------------------------------------------------------------
# Plain-numpy reference implementations (loops over time and over samples)
# --------------------------------------------------------------------------------------------


def _ref_run(Z, step, T):
    """Iterates theta_0..theta_T plus loss/grad-norm/accuracy/min-margin, naive formulas."""
    n, d = Z.shape
    theta = np.zeros(d)
    rec = {k: [] for k in ("path", "loss", "grad_norm", "accuracy", "min_margin")}
    for t in range(T + 1):
        m = np.array([Z[i] @ theta for i in range(n)])
        sig = 1.0 / (1.0 + np.exp(m))
        grad = np.zeros(d)
        for i in range(n):
            grad -= sig[i] * Z[i] / n
        rec["path"].append(theta.copy())
        rec["loss"].append(np.mean(np.log1p(np.exp(-m))))
        rec["grad_norm"].append(np.linalg.norm(grad))
        rec["accuracy"].append(np.mean(m > 0))
        rec["min_margin"].append(m.min())
        if t < T:
            theta = theta + step(t, m, sig, grad)
    return {k: np.array(v) for k, v in rec.items()}


def _ref_lr_gd(gamma):
    return lambda t, m, sig, grad: -gamma * grad


def _ref_normalized_lr_gd(gamma):
    return lambda t, m, sig, grad: -gamma * (1.0 / np.mean(sig)) * grad


def _ref_batch_perceptron(Z):
    n = Z.shape[0]

    def step(t, m, sig, grad):
        if t == 0:
            return sum(Z[i] for i in range(n)) / (2 * n)
        return sum((Z[i] for i in range(n) if m[i] <= 0), np.zeros(Z.shape[1])) / n

    return step


def _ref_normalized_batch_perceptron(Z):
    def step(t, m, sig, grad):
        S = [i for i in range(Z.shape[0]) if m[i] <= 0]
        return sum(Z[i] for i in S) / len(S) if S else np.zeros(Z.shape[1])

    return step


def _ref_perceptron(Z, max_updates):
    theta = np.zeros(Z.shape[1])
    for k in range(max_updates + 1):
        bad = [i for i in range(Z.shape[0]) if Z[i] @ theta <= 0]
        if not bad:
            return k, theta
        if k == max_updates:
            return -1, theta
        theta = theta + Z[bad[0]]


def _assert_trace_matches(trace, ref):
    scale = np.abs(ref["path"]).max()
    np.testing.assert_allclose(np.asarray(trace.path), ref["path"], rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(np.asarray(trace.theta_final), ref["path"][-1], rtol=0, atol=1e-12 * scale)
    for key in ("loss", "grad_norm", "min_margin"):
        np.testing.assert_allclose(np.asarray(getattr(trace, key)), ref[key], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(trace.accuracy), ref["accuracy"], rtol=1e-15, atol=0)
    assert P.separation_time(trace) == P.separation_time(ref["accuracy"])


@pytest.mark.parametrize("gamma", [0.5, 20.0])
def test_lr_gd_matches_numpy(small_Z, gamma):
    T = 40
    _assert_trace_matches(P.lr_gd(small_Z, gamma, T, keep_path=True), _ref_run(small_Z, _ref_lr_gd(gamma), T))


@pytest.mark.parametrize("gamma", [0.3, 1.0])
def test_normalized_lr_gd_matches_numpy(small_Z, gamma):
    # Past separation the map is sensitive to rounding at larger gamma (gamma = 5 drifts to ~1e-12
    # relative by t = 40, gamma = 20 faster), so the 1e-12 comparison uses moderate steps.
    T = 40
    ref = _ref_run(small_Z, _ref_normalized_lr_gd(gamma), T)
    _assert_trace_matches(P.normalized_lr_gd(small_Z, gamma, T, keep_path=True), ref)


def test_batch_perceptrons_match_numpy(small_Z):
    T = 40
    bp = P.batch_perceptron(small_Z, T, keep_path=True)
    _assert_trace_matches(bp, _ref_run(small_Z, _ref_batch_perceptron(small_Z), T))
    nbp = P.normalized_batch_perceptron(small_Z, T, keep_path=True)
    _assert_trace_matches(nbp, _ref_run(small_Z, _ref_normalized_batch_perceptron(small_Z), T))


def test_perceptron_updates_matches_numpy(small_Z, digits_Z):
    for Z in (small_Z, digits_Z):
        k_ref, theta_ref = _ref_perceptron(Z, 500)
        k, theta = P.perceptron_updates(Z, 500)
        assert k == k_ref > 0
        np.testing.assert_allclose(np.asarray(theta), theta_ref, rtol=0, atol=1e-12)
        assert np.all(Z @ np.asarray(theta) > 0)
    k_ref, _ = _ref_perceptron(digits_Z, 5)
    assert k_ref == -1 and P.perceptron_updates(digits_Z, 5)[0] == -1


def test_sweeps_match_single_runs(small_Z):
    gammas = np.array([0.1, 1.0, 3.0])
    for single, sweep in ((P.lr_gd, P.lr_gd_sweep), (P.normalized_lr_gd, P.normalized_lr_gd_sweep)):
        tr = sweep(small_Z, gammas, 20)
        assert tr.loss.shape == (3, 21) and tr.theta_final.shape == (3, 5) and tr.path is None
        for j, g in enumerate(gammas):
            one = single(small_Z, g, 20)
            for a, b in zip(tr[:5], one[:5]):
                np.testing.assert_allclose(np.asarray(a[j]), np.asarray(b), rtol=1e-12, atol=1e-13)



@pytest.mark.parametrize("method", P.METHODS)
def test_steps_to_separate_matches_traces(small_Z, worst_Z, method):
    """The early-stopping loop counts exactly what separation_time reads off the full trace."""
    run = getattr(P, method)
    for Z, T, path in ((small_Z, 40, True), (worst_Z, 320, False)):  # as compiled by other tests
        for g in ([0.1, 1.0, 100.0] if "lr_gd" in method else [1.0]):
            trace = run(Z, g, T, path) if "lr_gd" in method else run(Z, T, path)
            assert P.steps_to_separate(Z, method, T, g) == P.separation_time(trace)
    assert P.steps_to_separate(worst_Z, "batch_perceptron", 300) == -1  # separates at 301
    assert P.steps_to_separate(worst_Z, "batch_perceptron", 301) == 301


def test_steps_to_separate_validation(small_Z):
    with pytest.raises(ValueError, match="unknown method"):
        P.steps_to_separate(small_Z, "perceptron", 10)
    with pytest.raises(ValueError, match="step size gamma"):
        P.steps_to_separate(small_Z, "lr_gd", 10, 0.0)
    with pytest.raises(ValueError, match="num_steps"):
        P.steps_to_separate(small_Z, "lr_gd", -1)

# --------------------------------------------------------------------------------------------
# Paper numbers
# --------------------------------------------------------------------------------------------


def test_table1_worst_case_row(worst_Z):
    """Table 1, worst-case dataset (n = 1000): 2 / 2 / 16 / 157 and LR+GD(100) = 308."""
    gammas = np.array([100.0, 10.0, 1.0, 0.1])
    times = P.separation_time(P.normalized_lr_gd_sweep(worst_Z, gammas, 320))
    assert times.tolist() == [2, 2, 16, 157]
    assert [P.separation_time(P.normalized_lr_gd(worst_Z, g, 320)) for g in gammas] == [2, 2, 16, 157]
    assert P.separation_time(P.lr_gd(worst_Z, 100.0, 320)) == 308


@pytest.mark.parametrize("n", [10, 30, 100, 300, 1000, 3000])
def test_worst_case_closed_form(n):
    """Thm 5.1: Batch Perceptron needs floor(0.3n + 0.2) + 1 steps; normalized variants need 2."""
    Z = P.signed_samples(*P.worst_case_dataset(n))
    expected = math.floor(0.3 * n + 0.2) + 1
    assert P.batch_perceptron_worst_case_time(n) == expected
    T = expected + 3
    assert P.steps_to_separate(Z, "batch_perceptron", T) == expected
    assert P.steps_to_separate(Z, "normalized_batch_perceptron", T) == 2
    assert [P.steps_to_separate(Z, "normalized_lr_gd", T, g) for g in (10.0, 100.0)] == [2, 2]


def test_worst_case_dataset_validation():
    with pytest.raises(ValueError, match="n >= 10"):
        P.worst_case_dataset(9)


def test_two_point_theorem_4_1():
    Z = P.signed_samples(*P.two_point_dataset())
    for gamma in (1.0, 10.0, 100.0):
        tr = P.lr_gd(Z, gamma, 2, keep_path=True)
        np.testing.assert_allclose(np.asarray(tr.path[1]), gamma * np.array([0.5, 0.75]), rtol=1e-15)
    g = 100.0
    tr = P.lr_gd(Z, g, 2, keep_path=True)
    exact_f1 = 0.5 * (math.log1p(math.exp(g / 4)) + math.log1p(math.exp(-7 * g / 2)))
    assert abs(float(tr.loss[1]) - 12.5) < 1e-3 and abs(float(tr.loss[1]) - exact_f1) < 1e-12
    assert abs(float(tr.grad_norm[1]) - 0.7071) < 1e-4
    np.testing.assert_allclose(np.asarray(tr.path[2]) / g, [1.0, 0.25], atol=1e-6)
    assert float(tr.min_margin[2]) > 0 and float(tr.accuracy[2]) == 1.0
    assert float(tr.loss[2]) < 1e-30
    assert float(P.logistic_loss(tr.path[2], Z)) < 1e-30


def _reduction_error(Z, gamma):
    bp = P.batch_perceptron(Z, 300, keep_path=True)
    T = P.separation_time(bp)
    assert T > 0
    path_bp = np.asarray(bp.path[: T + 1])
    m_min = np.abs(np.asarray(Z) @ path_bp[1:].T).min()
    lr = P.lr_gd(Z, gamma, T, keep_path=True)
    err = np.linalg.norm(np.asarray(lr.path) / gamma - path_bp, axis=1).max()
    return err, T, P.separation_time(lr), m_min


@pytest.mark.parametrize("which", ["digits", "planted"])
def test_theorem_3_2_reduction(which, digits_Z):
    """Thm 3.2: theta_t(gamma)/gamma -> Batch Perceptron iterate; needs gamma * m_min >> log n."""
    Z = digits_Z if which == "digits" else P.signed_samples(*planted_margin(400, 20, 0.001, seed=1))
    gamma = 1e8
    err, T, T_lr, m_min = _reduction_error(Z, gamma)
    assert gamma * m_min > 50  # the regime where the limit is reached to machine precision
    assert err < 1e-10
    assert T_lr == T


# --------------------------------------------------------------------------------------------
# Margin certificate and bounds
# --------------------------------------------------------------------------------------------


def test_margin_worst_case():
    mc = P.margin_certificate(P.signed_samples(*P.worst_case_dataset(50)))
    assert mc.separable
    assert abs(mc.mu_lower - 0.5) < 1e-6 and abs(mc.mu_upper - 0.5) < 1e-6
    assert mc.mu_lower <= mc.mu_upper
    assert abs(mc.radius**2 - 1.25) < 1e-12
    np.testing.assert_allclose(mc.w, [1.0, 0.0], atol=1e-6)


def test_margin_brute_force_2d():
    Z = np.asarray(P.signed_samples(*planted_margin(60, 2, 0.05, seed=7)))
    angles = np.linspace(0.0, 2 * np.pi, 400001)
    dirs = np.stack([np.cos(angles), np.sin(angles)])
    mu_grid = (Z @ dirs).min(axis=0).max()  # a lower bound within R * pi / 400000 of mu
    mc = P.margin_certificate(Z)
    assert mc.separable and mc.mu_lower <= mc.mu_upper
    assert mu_grid <= mc.mu_upper + 1e-12
    assert abs(mc.mu_lower - mu_grid) < 1e-4


def test_margin_digits_vs_linear_svc(digits_Z):
    mc = P.margin_certificate(digits_Z)
    assert mc.separable and (mc.mu_upper - mc.mu_lower) / mc.mu_lower < 1e-3
    assert mc.mu_lower == pytest.approx(float((digits_Z @ mc.w).min()), abs=1e-14)
    n = digits_Z.shape[0]
    X = np.concatenate([digits_Z, -digits_Z])  # labels are folded into Z; mirror to get two classes
    svc = LinearSVC(fit_intercept=False, C=1e4, loss="hinge", tol=1e-10, max_iter=200000)
    svc.fit(X, np.r_[np.ones(n), -np.ones(n)])
    w = svc.coef_.ravel()
    mu_svc = (digits_Z @ w).min() / np.linalg.norm(w)
    assert mu_svc <= mc.mu_upper + 1e-12
    assert abs(mu_svc - mc.mu_lower) / mc.mu_lower < 1e-2


def test_margin_non_separable():
    xor_A = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    mc = P.margin_certificate(P.signed_samples(xor_A, np.array([1.0, 1.0, -1.0, -1.0])))
    assert not mc.separable and math.isnan(mc.mu_lower) and math.isnan(mc.mu_upper)
    assert mc.radius == pytest.approx(math.sqrt(2))


def test_bounds_hold_on_digits(digits_Z):
    """Thms 3.3, 5.2, 5.3, 6.1 with the conservative mu_upper (>= the true margin)."""
    mc = P.margin_certificate(digits_Z)
    n, R, mu = digits_Z.shape[0], mc.radius, mc.mu_upper
    T = 900
    assert 0 < P.steps_to_separate(digits_Z, "batch_perceptron", T) <= P.batch_perceptron_bound(n, R, mu)
    assert 0 < P.perceptron_updates(digits_Z, T)[0] <= P.perceptron_bound(R, mu)
    assert 0 < P.steps_to_separate(digits_Z, "normalized_batch_perceptron", T) <= P.perceptron_bound(R, mu)
    for g in (1.0, 10.0, 100.0):
        assert 0 < P.steps_to_separate(digits_Z, "normalized_lr_gd", T, g) <= P.normalized_lr_gd_bound(n, R, mu, g) < T


def test_bound_formulas():
    assert P.batch_perceptron_bound(10, 2.0, 0.5) == pytest.approx(160.0)
    assert P.perceptron_bound(2.0, 0.5) == pytest.approx(16.0)
    assert P.normalized_lr_gd_bound(10, 2.0, 0.5, 4.0) == pytest.approx(16.0 + 2 * math.log(19) / 1.0)


def test_smoothness_constant():
    rng = np.random.default_rng(0)
    for shape in ((30, 4), (5, 40), (300, 300)):
        Z = rng.standard_normal(shape)
        expected = np.linalg.svd(Z, compute_uv=False)[0] ** 2 / (4 * shape[0])
        assert P.smoothness_constant(Z) == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------------------------
# Numerics, helpers and input validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalized_lr_gd_stable_after_separation(worst_Z, dtype):
    Z = worst_Z.astype(dtype)
    tr = P.normalized_lr_gd(Z, 100.0, 600)
    assert tr.loss.dtype == dtype and tr.theta_final.dtype == dtype
    for field in tr[:5]:
        assert np.all(np.isfinite(np.asarray(field)))
    # Hand computation (n = 1000): theta_1 = (50, 99.8), theta_2 ~ (100, -0.2) separates; the next
    # step puts almost all weight on the 999 class -1 samples, theta_3 ~ (150, 99.67), which
    # misclassifies the single +1 sample again; theta_4 ~ (200, -0.33) separates again.
    acc = np.asarray(tr.accuracy)
    assert P.separation_time(tr) == 2 and acc[3] == pytest.approx(0.999) and acc[4] == 1.0


def test_loss_and_grad_helpers(small_Z):
    theta = np.linspace(-1, 1, small_Z.shape[1])
    m = small_Z @ theta
    assert float(P.logistic_loss(theta, small_Z)) == pytest.approx(np.mean(np.log1p(np.exp(-m))), rel=1e-13)
    grad = -(small_Z.T @ (1 / (1 + np.exp(m)))) / len(m)
    np.testing.assert_allclose(np.asarray(P.logistic_grad(theta, small_Z)), grad, rtol=1e-12, atol=1e-15)
    autodiff = jax.grad(P.logistic_loss)(theta, small_Z)
    np.testing.assert_allclose(np.asarray(autodiff), grad, rtol=1e-12, atol=1e-15)
    assert float(P.accuracy(theta, small_Z)) == pytest.approx(np.mean(m > 0), rel=1e-15)
    assert float(P.accuracy(np.zeros(small_Z.shape[1]), small_Z)) == 0.0  # sign(0) is an error
    # huge margins: softplus form does not overflow; loss ~ perceptron loss, finite gradient
    big = 1e6 * theta
    expected = float(P.perceptron_loss(big, small_Z))
    assert float(P.logistic_loss(big, small_Z)) == pytest.approx(expected, rel=1e-9)
    assert np.all(np.isfinite(np.asarray(P.logistic_grad(big, small_Z))))


def test_scaled_loss_tends_to_perceptron_loss(digits_Z):
    """Sec. 3 remark: 0 <= scaled loss - perceptron loss <= log(2)/s, so the gap vanishes as s -> inf."""
    theta = P.perceptron_updates(digits_Z, 5)[1]  # not separating (5 updates; compiled above)
    perc = float(P.perceptron_loss(theta, digits_Z))
    assert perc > 0
    gaps = [float(P.scaled_logistic_loss(theta, digits_Z, s)) - perc for s in (1.0, 10.0, 100.0, 1000.0)]
    for s, gap in zip((1.0, 10.0, 100.0, 1000.0), gaps):
        assert -1e-15 <= gap <= math.log(2) / s + 1e-15
    assert gaps[2] < 1e-3 and gaps == sorted(gaps, reverse=True)


def test_separation_time_helper():
    assert P.separation_time(np.array([0.0, 0.5, 1.0, 0.9, 1.0])) == 2
    assert P.separation_time(np.array([0.0, 0.5, 0.99])) == -1
    np.testing.assert_array_equal(P.separation_time(np.array([[0.0, 1.0], [0.0, 0.0]])), [1, -1])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_gamma_raises(small_Z, bad):
    for fn in (P.lr_gd, P.normalized_lr_gd):
        with pytest.raises(ValueError, match="step size gamma"):
            fn(small_Z, bad, 5)
    for fn in (P.lr_gd_sweep, P.normalized_lr_gd_sweep):
        with pytest.raises(ValueError, match="step size gamma"):
            fn(small_Z, np.array([1.0, bad]), 5)


def test_bad_gamma_shapes(small_Z):
    with pytest.raises(ValueError, match="non-empty 1-D"):
        P.lr_gd_sweep(small_Z, np.array([]), 5)
    with pytest.raises(ValueError, match="scalar"):
        P.lr_gd(small_Z, np.array([1.0, 2.0]), 5)
    with pytest.raises(ValueError, match="num_steps"):
        P.lr_gd(small_Z, 1.0, -1)


def test_signed_samples_validation():
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(np.asarray(P.signed_samples(A, np.array([1, -1]))), [[1, 2], [-3, -4]])
    with pytest.raises(ValueError, match="labels"):
        P.signed_samples(A, np.array([1, 0]))
    with pytest.raises(ValueError, match="shape"):
        P.signed_samples(A, np.array([1, -1, 1]))
    with pytest.raises(ValueError, match="2-D"):
        P.signed_samples(A[0], np.array([1]))
    with pytest.raises(ValueError, match="finite"):
        P.signed_samples(np.array([[1.0, np.nan], [0.0, 1.0]]), np.array([1, -1]))
