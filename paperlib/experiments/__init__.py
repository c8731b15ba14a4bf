"""Per-paper protocols: the sweeps, training loops and evaluation routines a notebook calls.

One module per paper (``paperlib/experiments/<first-author>.py``), built on the model families in
``paperlib/``; each has its tests in ``tests/test_experiments_<first-author>.py``. A notebook keeps the
narrative, its parameters, the calls, the claims and the plots.
"""

import os

# A scaffold under test (tests/test_scaffold.py) is written outside the package; this lets its
# notebook import it as ``paperlib.experiments.<author>`` as well.
__path__.extend(p for p in os.environ.get("PAPERLIB_EXPERIMENTS_PATH", "").split(os.pathsep) if p)
