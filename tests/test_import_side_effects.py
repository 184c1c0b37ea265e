"""Importing any module of `bert` changes nothing outside it: logging, the environment, absl flags."""

import json
import os
import subprocess
import sys

from helpers import REPO_ROOT

from bert.runtime.specs import estimator_available

# Runs in a fresh Python: takes the state after importing TensorFlow (which sets up its own logger), imports every
# module of the package, and prints what changed.
_CHILD = r"""
import importlib, json, logging, os, pkgutil
import tensorflow.compat.v1 as tf
from absl import flags
tf.get_logger()  # TensorFlow's own logger set-up, which any TensorFlow user gets

def state():
    loggers = {name: ([type(h).__name__ for h in logging.getLogger(name).handlers],
                      [type(f).__name__ for f in logging.getLogger(name).filters], logging.getLogger(name).level)
               for name in ("", "tensorflow", "absl", "bert")}
    return {"loggers": loggers, "environment": dict(os.environ), "flags": sorted(flags.FLAGS)}

before = state()
import bert
names = [info.name for info in pkgutil.walk_packages(bert.__path__, "bert.")]
refused = []  # modules that say, on TensorFlow 2.16+, that they need tf.estimator
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as error:
        if "needs tf.estimator" not in str(error):
            raise
        refused.append(name)
after = state()
changed = {key: [before[key], after[key]] for key in before if before[key] != after[key]}
print(json.dumps({"imported": len(names) - len(refused), "changed": changed, "refused": refused}))
"""


def test_importing_every_module_changes_no_logging_environment_or_flags():
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # a program would set it
    completed = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, cwd=REPO_ROOT,
                               env=environment, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["imported"] > 40
    assert report["changed"] == {}
    # Only the Estimator engine's own module needs the Estimator; every other module imports on both stacks.
    assert report["refused"] == ([] if estimator_available() else ["bert.runtime.estimator"])
