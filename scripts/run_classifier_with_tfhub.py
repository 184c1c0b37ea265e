#!/usr/bin/env python
"""The original's run_classifier_with_tfhub.py command line; the program is bert/run_classifier_with_tfhub.py (also `python -m bert.run_classifier_with_tfhub`)."""

import sys

from bert.runtime import logs

logs.quiet_start(sys.argv)  # before TensorFlow is imported: its start-up lines stay hidden
from bert import run_classifier_with_tfhub  # noqa: E402

if __name__ == "__main__":
    run_classifier_with_tfhub.main()
