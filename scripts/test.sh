#!/usr/bin/env bash
# Sets up the environment and runs the whole test suite (the command CI runs). Arguments go to pytest:
#   bash scripts/test.sh -m "not slow"     # the fast tier, while working
# The original release's files in ../shared/original_bert (or $ORIGINAL_BERT_DIR) are run live by the parity tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export BERT_SHARED_DIR="${BERT_SHARED_DIR:-$(cd .. && pwd)/shared}"
if [ -z "${ORIGINAL_BERT_DIR:-}" ] && [ -d "$BERT_SHARED_DIR/original_bert" ]; then
  export ORIGINAL_BERT_DIR="$BERT_SHARED_DIR/original_bert"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
status=0
.venv/bin/python -m pytest "$@" || status=$?
# pytest exits 5 when no test was collected (e.g. a filter matched nothing): not a failure of the code.
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests"
  status=0
fi
exit "$status"
