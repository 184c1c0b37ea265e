"""Importing files of the original release (google-research/bert) next to this package, for comparisons.

The original says `import tensorflow as tf` and expects TensorFlow 1.x. `load_module` runs one of its files with a
caller-made stand-in under that name (e.g. tensorflow.compat.v1 plus the tf.contrib members it uses, or a tiny
module with only tf.gfile so that no TensorFlow is imported at all), then puts the real entry back.
"""

import importlib.util
import os
import sys
import types


def load_module(path: str, module_name: str, tensorflow_stand_in: types.ModuleType) -> types.ModuleType:
    """Executes the Python file `path` as a new module named `module_name`, with `import tensorflow` inside it
    giving `tensorflow_stand_in`.

    Raises:
      FileNotFoundError: there is no file at `path`.
    """
    spec = importlib.util.spec_from_file_location(module_name, path) if os.path.isfile(path) else None
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path} is not a loadable Python file")
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("tensorflow")
    sys.modules["tensorflow"] = tensorflow_stand_in
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["tensorflow"]
        else:
            sys.modules["tensorflow"] = saved
    return module
