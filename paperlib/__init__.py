"""paperlib: analytic JAX models behind the repository's paper-reproduction notebooks.

Model families live in one module each (``perceptron``, ...); ``claims``, ``figures``, ``profiles``,
``provenance`` and ``session`` (a notebook's set-up in one call) are the shared core; ``reproduce`` is
the papermill runner (``paperlib reproduce``).
"""

__version__ = "0.1.0"
