#!/usr/bin/env python
"""The original's create_pretraining_data.py command line; the program is bert/create_pretraining_data.py (also `python -m bert.create_pretraining_data`)."""

import sys

from bert.runtime import logs

logs.quiet_start(sys.argv)  # before TensorFlow is imported: its start-up lines stay hidden
from bert import create_pretraining_data  # noqa: E402

if __name__ == "__main__":
    create_pretraining_data.main()
