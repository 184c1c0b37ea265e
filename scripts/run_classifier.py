#!/usr/bin/env python
"""The original's run_classifier.py command line; the program is bert/run_classifier.py (also `python -m bert.run_classifier`)."""

from bert import run_classifier

if __name__ == "__main__":
    run_classifier.main()
