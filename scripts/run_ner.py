#!/usr/bin/env python
"""Named-entity recognition on CoNLL files; the program is bert/run_ner.py (also `python -m bert.run_ner`)."""

import sys

from bert.runtime import logs

logs.quiet_start(sys.argv)  # before TensorFlow is imported: its start-up lines stay hidden
from bert import run_ner  # noqa: E402

if __name__ == "__main__":
    run_ner.main()
