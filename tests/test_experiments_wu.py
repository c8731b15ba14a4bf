"""Protocols of the Wu & Su notebook on a linear model, where every quantity has a closed form."""

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
jax.config.update("jax_enable_x64", True)

from paperlib import stability as st  # noqa: E402
from paperlib.experiments import wu  # noqa: E402

RNG = np.random.default_rng(0)
X = jnp.asarray(RNG.standard_normal((12, 3)))
Y = X @ jnp.asarray([1.0, -2.0, 0.5])


def lin(theta, x):
    return jnp.dot(theta, x)


def init(key):
    return jax.random.normal(key, (3,))


def test_sweep_is_one_seed_major_trainer_call_with_the_warm_up_start():
    key = jax.random.PRNGKey(1)
    run, L, th0 = wu.sweep(lin, init, X, Y, [0.01, 0.1], 2, 100, 1, key, True, 0.3)
    np.testing.assert_array_equal(L, [0.01, 0.1, 0.01, 0.1])
    keys = jax.random.split(key, 3)
    np.testing.assert_array_equal(th0[1], init(keys[0]))
    np.testing.assert_array_equal(th0[2], init(keys[1]))
    tr_g = float(jnp.mean(jnp.sum(X**2, 1)))  # Tr G = mean ||x||^2 for a linear model
    want = st.train(lin, th0, X, Y, L, steps=100, batch_size=1, key=keys[-1],
                    lr0=np.full(4, 0.5 / tr_g), warmup_steps=30, record_every=5)
    np.testing.assert_allclose(run.theta, want.theta, rtol=1e-10)


def test_measures_are_the_closed_form_gram_spectrum_and_nan_when_diverged():
    run = st.Run(jnp.stack([jnp.ones(3), jnp.zeros(3)]), None, jnp.array([False, True]), None)
    m = wu.measures(lin, run, X)
    ev = np.linalg.eigvalsh(np.asarray(X @ X.T) / 12)
    np.testing.assert_allclose(m[0], [ev.sum(), np.sqrt(np.sum(ev**2)), ev[-1]], rtol=1e-10)
    assert np.all(np.isnan(m[1]))


def test_per_seed_tables_and_spread():
    res = dict(L=np.array([0.1, 0.2, 0.1, 0.2]), ok=np.array([True, False, True, True]),
               v=np.array([1.0, 5.0, 3.0, 4.0]))
    table = wu.per_seed(res, res["v"], [0.1, 0.2])
    np.testing.assert_array_equal(table, [[1.0, np.nan], [3.0, 4.0]])
    np.testing.assert_array_equal(wu.per_lr_mean(res, "v", [0.1, 0.2]), [2.0, 4.0])
    assert wu.spread([1.0, np.nan, 3.0]) == 1.0


def test_train_to_minimum_stops_at_the_rule_and_equals_one_long_gd_run():
    th0 = jnp.zeros(3)
    run, done = wu.train_to_minimum(lin, th0, X, Y, [0.1, 0.2], None, 1000, 1e-6,
                                    jax.random.PRNGKey(0))
    assert np.all(np.asarray(run.final_loss) < 1e-6) and done % 100 == 0 and done < 1000
    whole = st.train(lin, jnp.stack([th0, th0]), X, Y, [0.1, 0.2], steps=done, batch_size=None,
                     key=jax.random.PRNGKey(0), record_every=10)
    np.testing.assert_allclose(run.theta, whole.theta, rtol=1e-9, atol=1e-12)
    prev = st.train(lin, jnp.stack([th0, th0]), X, Y, [0.1, 0.2], steps=done - 100, batch_size=None,
                    key=jax.random.PRNGKey(0), record_every=10)
    assert not np.all(np.asarray(prev.final_loss) < 1e-6)  # it did not stop late


def test_lr_figure_draws_three_panels():
    res = dict(L=np.array([0.1, 0.2]), ok=np.array([True, True]), sharp=np.ones((2, 3)),
               n=np.array([1.0, 2.0]), test=np.array([0.5, 0.4]),
               run=st.Run(None, None, jnp.array([False, True]), None))
    fig = wu.lr_figure(res, res, [0.1, 0.2], [0.1, 0.2], "n", "norm", "test", "t")
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) >= 7
