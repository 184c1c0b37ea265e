#!/usr/bin/env python
"""The original's create_pretraining_data.py command line; the program is bert/create_pretraining_data.py (also `python -m bert.create_pretraining_data`)."""

from bert import create_pretraining_data

if __name__ == "__main__":
    create_pretraining_data.main()
