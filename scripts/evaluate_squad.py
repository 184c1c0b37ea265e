#!/usr/bin/env python
"""Scores SQuAD predictions like the official v1.1/v2.0 scripts, with their command line:
    evaluate_squad.py DATA_FILE PREDICTIONS_FILE [--na-prob-file NULL_ODDS_FILE] [--na-prob-thresh 1.0]
The program is bert/evaluate_squad.py (also `python -m bert.evaluate_squad`)."""

import sys

from bert.runtime import logs

logs.quiet_start(sys.argv)  # before TensorFlow is imported: its start-up lines stay hidden
from bert import evaluate_squad  # noqa: E402

if __name__ == "__main__":
    evaluate_squad.main()
