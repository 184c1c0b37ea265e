#!/usr/bin/env bash
# Sets up both stacks and runs the test suite on each (the command CI runs). Arguments go to pytest:
#   bash scripts/test.sh -m "not slow"     # the fast tier, while working
# The TensorFlow 2.15 stack (.venv-tf2.15) runs every test; the TensorFlow 2.16+ stack (.venv-tf2.21) every test
# not marked needs_tf215 (tf.estimator, TPUEstimator, hub.Module, the original's code), among them the cross-stack
# checks, which run the 2.15 stack's Python beside it. BERT_TEST_STACKS="tf2.15" (or "tf2.21") runs one stack.
# A stack without a suitable Python is left out with a note, except under CI=true, where that fails the run.
# The original release's files in ../shared/original_bert (or $ORIGINAL_BERT_DIR) are run live by the parity tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export BERT_SHARED_DIR="${BERT_SHARED_DIR:-$(cd .. && pwd)/shared}"
if [ -z "${ORIGINAL_BERT_DIR:-}" ] && [ -d "$BERT_SHARED_DIR/original_bert" ]; then
  export ORIGINAL_BERT_DIR="$BERT_SHARED_DIR/original_bert"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

status=0
for stack in ${BERT_TEST_STACKS:-tf2.15 tf2.21}; do
  if ! bash scripts/setup_env.sh --stack "$stack" --print-python >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
      bash scripts/setup_env.sh --stack "$stack" --print-python >/dev/null || true
      echo "error: CI=true, and the $stack stack has no Python here" >&2
      status=1
    else
      echo "note: the $stack stack is left out (no suitable Python; see scripts/setup_env.sh --stack $stack)" >&2
    fi
    continue
  fi
  bash scripts/setup_env.sh --stack "$stack"
  venv=$(bash scripts/setup_env.sh --stack "$stack" --print-venv)
  if [ "$stack" = tf2.15 ]; then
    export BERT_TF215_PYTHON="$PWD/$venv/bin/python"  # for the cross-stack tests of the other stack
  fi
  echo "== $stack stack: $("$venv/bin/python" -c 'import sys, tensorflow as tf; print("TensorFlow", tf.__version__, "on Python", sys.version.split()[0])' 2>/dev/null)"
  result=0
  "$venv/bin/python" -m pytest "$@" || result=$?
  # pytest exits 5 when no test was collected (e.g. a filter matched nothing): not a failure of the code.
  if [ "$result" -eq 5 ]; then
    echo "pytest collected no tests"
    result=0
  fi
  if [ "$result" -ne 0 ]; then
    status=$result
  fi
done
exit "$status"
