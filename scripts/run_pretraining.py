#!/usr/bin/env python
"""The original's run_pretraining.py command line; the program is bert/run_pretraining.py (also `python -m bert.run_pretraining`)."""

from bert import run_pretraining

if __name__ == "__main__":
    run_pretraining.main()
