#!/usr/bin/env python
"""The original's extract_features.py command line; the program is bert/extract_features.py (also `python -m bert.extract_features`)."""

from bert import extract_features

if __name__ == "__main__":
    extract_features.main()
