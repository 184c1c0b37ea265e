"""Where the benchmarks find the harness that runs the original release's files: tests/original_code.py."""

import importlib
import os
import sys
import types

TESTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")


def original_code() -> types.ModuleType:
    """tests/original_code.py (kept with the tests, which use it to compare with the original)."""
    if TESTS_DIR not in sys.path:
        sys.path.append(TESTS_DIR)
    return importlib.import_module("original_code")
