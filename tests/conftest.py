"""Test ordering for parallel workers: the long tests (each notebook under smoke, the scaffold run, the
runner's signal tests) start first, so the short ones fill the gaps instead of one worker finishing a
notebook alone at the end (longest-processing-time-first scheduling)."""

LONG = ("test_notebook_smoke", "test_the_scaffold_runs", "test_reproduce.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: not any(mark in item.nodeid for mark in LONG))
