#!/usr/bin/env python
"""The original's run_squad.py command line; the program is bert/run_squad.py (also `python -m bert.run_squad`)."""

from bert import run_squad

if __name__ == "__main__":
    run_squad.main()
