#!/usr/bin/env python
"""The original's extract_features.py command line; the program is bert/extract_features.py (also `python -m bert.extract_features`)."""

import sys

from bert.runtime import logs

logs.quiet_start(sys.argv)  # before TensorFlow is imported: its start-up lines stay hidden
from bert import extract_features  # noqa: E402

if __name__ == "__main__":
    extract_features.main()
