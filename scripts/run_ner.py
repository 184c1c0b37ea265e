#!/usr/bin/env python
"""Named-entity recognition on CoNLL files; the program is bert/run_ner.py (also `python -m bert.run_ner`)."""

from bert import run_ner

if __name__ == "__main__":
    run_ner.main()
