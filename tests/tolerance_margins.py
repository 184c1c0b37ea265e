"""Opt-in pytest plugin: how close each float comparison of the suite comes to its tolerance.

    BERT_TOLERANCE_REPORT=/tmp/margins.jsonl PYTHONPATH=tests pytest -p tolerance_margins tests/runtime/test_accumulation.py
    ONEDNN_MAX_CPU_ISA=AVX2 BERT_TOLERANCE_REPORT=/tmp/margins_avx2.jsonl PYTHONPATH=tests pytest -p ...

While it is loaded, every `numpy.testing.assert_allclose` call also records the largest
|actual - desired| / (atol + rtol * |desired|) it saw (1.0 is the edge of its tolerance), with the test and the
line that asserted it. Runs under other kernels (ONEDNN_MAX_CPU_ISA=AVX2 or AVX512_CORE, TF_ENABLE_ONEDNN_OPTS=0:
what other CPU families run) show how much margin each tolerance has; `python tests/tolerance_margins.py
REPORT...` prints the closest calls of one or more reports. Without BERT_TOLERANCE_REPORT it changes nothing.
"""

import json
import os
import sys
import traceback
from typing import List

import numpy as np

_REPORT_VARIABLE = "BERT_TOLERANCE_REPORT"
_records: List[dict] = []
_current_test = {"nodeid": None}


def _recording(assert_allclose):
    def recorded(actual, desired, rtol=1e-7, atol=0, *args, **kwargs):
        try:
            actual_array = np.asarray(actual, np.float64)
            desired_array = np.asarray(desired, np.float64)
            difference = np.abs(actual_array - desired_array)
            bound = atol + rtol * np.abs(desired_array)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(bound > 0, difference / bound, np.where(difference > 0, np.inf, 0.0))
            caller = traceback.extract_stack(limit=2)[0]
            _records.append({"test": _current_test["nodeid"], "line": f"{os.path.basename(caller.filename)}:"
                                                                      f"{caller.lineno}",
                             "max_abs_diff": float(difference.max(initial=0.0)),
                             "ratio": float(ratio.max(initial=0.0)), "atol": float(atol), "rtol": float(rtol)})
        except (TypeError, ValueError):  # shapes or types the assertion itself will report
            pass
        return assert_allclose(actual, desired, rtol, atol, *args, **kwargs)

    return recorded


def pytest_configure(config):
    if os.environ.get(_REPORT_VARIABLE):
        np.testing.assert_allclose = _recording(np.testing.assert_allclose)


def pytest_runtest_setup(item):
    _current_test["nodeid"] = item.nodeid


def pytest_sessionfinish(session):
    report = os.environ.get(_REPORT_VARIABLE)
    if report:
        with open(report, "a", encoding="utf-8") as f:
            for record in _records:
                record["environment"] = {name: os.environ.get(name) for name in
                                         ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS")}
                f.write(json.dumps(record) + "\n")


def print_closest(report_files: List[str], count: int = 30) -> None:
    """Prints the `count` calls (over all reports) that came closest to their tolerance."""
    records = []
    for path in report_files:
        with open(path, encoding="utf-8") as f:
            records.extend(json.loads(line) for line in f if line.strip())
    for record in sorted(records, key=lambda r: -r["ratio"])[:count]:
        print(f"{record['ratio']:8.3f}  diff {record['max_abs_diff']:.3g}  atol {record['atol']:g} "
              f"rtol {record['rtol']:g}  {record['line']}  {record['test']}  {record['environment']}")


if __name__ == "__main__":
    print_closest(sys.argv[1:])
