#!/usr/bin/env python
"""The predict command line [new]; the program is bert/predict.py (also `python -m bert.predict`)."""

import sys

from bert.runtime import logs

logs.quiet_start(sys.argv)  # before TensorFlow is imported: its start-up lines stay hidden
from bert import predict  # noqa: E402

if __name__ == "__main__":
    predict.main()
