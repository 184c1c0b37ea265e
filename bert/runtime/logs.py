"""Quiet, single-copy logs for the command-line programs.

By default a program shows its own lines and TensorFlow's warnings that matter, each once. Hidden: TensorFlow's C++
start-up lines (oneDNN, CUDA, TensorRT: they are printed while `import tensorflow` runs, so `quiet_start` sets
TF_CPP_MIN_LOG_LEVEL and, since TensorFlow 2.16+ print some regardless, imports TensorFlow itself with those lines
held back; a program calls it before anything imports TensorFlow), its deprecation warnings and the Estimator's
internal INFO lines (RunConfig dump, "Calling model_fn", ...) except those saying which checkpoint is saved or
restored. absl's `--verbosity=1` (or `-v 1`) shows all of them in absl's long format; a TF_CPP_MIN_LOG_LEVEL already
set in the environment is left as it is. Importing this module (or any of `bert`) changes nothing: only a program
started as a program calls `quiet_start` (`python -m bert.<program>`, `scripts/*.py`, the installed commands through
bert.commands) and `configure`.
"""

import importlib.util
import logging
import os
import re
import sys
import tempfile
from typing import Sequence

QUIET_TF_CPP_MIN_LOG_LEVEL = "3"  # the CUDA registration lines at import are C++ errors, not just info
_SHORT_FORMAT = "%(levelname).1s %(asctime)s %(message)s"
_NOISY_WARNINGS = re.compile(
    r"is deprecated|eval_on_tpu ignored|includes params argument, but params are not passed|"
    r"Using temporary folder as model directory")
# What TensorFlow's C++ code prints while it is imported, with or without TF_CPP_MIN_LOG_LEVEL (2.16+ log through
# absl, which prints its first lines whatever that says); other lines printed then are shown.
_START_UP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations|cpu_feature_guard|"
    r"To enable the following instructions|This TensorFlow binary is optimized|cuda|TensorRT|"
    r"Unable to register cu|computation placer")
# TensorFlow's INFO lines that say where checkpoints go and come from: kept (one per checkpoint).
_USEFUL_INFO = re.compile(r"^(Saving checkpoints for \d+ into|Restoring parameters from) ")


def verbose_requested(argv: Sequence[str]) -> bool:
    """Whether the command line asks for absl verbosity >= 1 (--verbosity=N, --verbosity N, -v N, -vN)."""
    for index, arg in enumerate(argv):
        value = None
        if arg.startswith("--verbosity="):
            value = arg.split("=", 1)[1]
        elif arg in ("--verbosity", "-v") and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith("-v") and len(arg) > 2 and not arg.startswith("--"):
            value = arg[2:]
        if value is not None:
            try:
                return int(value) >= 1
            except ValueError:
                return False
    return False


def _package_dirs(names: Sequence[str]) -> tuple:
    """Folders of the installed packages `names`, found without importing them."""
    dirs = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            dirs.extend(os.path.join(os.path.realpath(path), "") for path in spec.submodule_search_locations)
    return tuple(dirs)


class TensorFlowNoiseFilter(logging.Filter):
    """Drops the `tensorflow` logger's deprecation warnings, known noise and TensorFlow's own INFO lines; lines
    that our code logs through tf.logging (and every ERROR) pass."""

    def __init__(self):
        super().__init__()
        self._internal_dirs = _package_dirs(("tensorflow", "tensorflow_estimator", "keras"))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        if _NOISY_WARNINGS.search(record.getMessage()):
            return False
        internal = os.path.realpath(record.pathname).startswith(self._internal_dirs)
        return not internal or record.levelno >= logging.WARNING or bool(_USEFUL_INFO.match(record.getMessage()))


_FILTER = TensorFlowNoiseFilter()


def quiet_start(argv: Sequence[str]) -> None:
    """Before TensorFlow is imported: hide its C++ start-up lines and Python noise unless verbosity was asked."""
    if verbose_requested(argv):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_CPP_MIN_LOG_LEVEL)
    logging.getLogger("tensorflow").addFilter(_FILTER)
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == QUIET_TF_CPP_MIN_LOG_LEVEL:
        _import_tensorflow_without_start_up_lines()


def _import_tensorflow_without_start_up_lines() -> None:
    """Imports TensorFlow with file descriptor 2 (where its C++ code writes) captured, then prints what it wrote
    but the known start-up lines."""
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401 (imported for its side effect: loading the C++ libraries)
        finally:
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            captured.seek(0)
            lines = captured.read().decode("utf-8", errors="replace").splitlines()
            kept = [line for line in lines if line.strip() and not _START_UP_NOISE.search(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


def configure(verbose: bool) -> None:
    """After the flags are parsed (absl's handler is installed): every line once, at INFO (DEBUG when verbose).

    TensorFlow gives its logger a handler of its own when imported before absl set up the root logger; the
    records then reach both handlers, so its handler is removed and absl's prints everything.
    """
    from absl import logging as absl_logging

    tf_logger = logging.getLogger("tensorflow")
    for handler in list(tf_logger.handlers):
        tf_logger.removeHandler(handler)
    tf_logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("bert").setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose:
        tf_logger.removeFilter(_FILTER)
    else:
        absl_logging.get_absl_handler().setFormatter(logging.Formatter(_SHORT_FORMAT, "%H:%M:%S"))

