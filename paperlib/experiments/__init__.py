"""Per-paper protocols: the sweeps, training loops and evaluation routines a notebook calls.

One module per paper (``paperlib/experiments/<first-author>.py``), built on the model families in
``paperlib/``; each has its tests in ``tests/test_experiments_<first-author>.py``. A notebook keeps the
narrative, its parameters, the calls, the claims and the plots.
"""
