#!/usr/bin/env python
"""The original's run_classifier_with_tfhub.py command line; the program is bert/run_classifier_with_tfhub.py (also `python -m bert.run_classifier_with_tfhub`)."""

from bert import run_classifier_with_tfhub

if __name__ == "__main__":
    run_classifier_with_tfhub.main()
