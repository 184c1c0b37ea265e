#!/usr/bin/env python
"""The original's run_pretraining.py command line; the program is bert/run_pretraining.py (also `python -m bert.run_pretraining`)."""

import sys

from bert.runtime import logs

logs.quiet_start(sys.argv)  # before TensorFlow is imported: its start-up lines stay hidden
from bert import run_pretraining  # noqa: E402

if __name__ == "__main__":
    run_pretraining.main()
