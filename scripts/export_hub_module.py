#!/usr/bin/env python
"""Writes a TF1 Hub module of a BERT checkpoint; the program is bert/export_hub_module.py (also `python -m bert.export_hub_module`)."""

import sys

from bert.runtime import logs

logs.quiet_start(sys.argv)  # before TensorFlow is imported: its start-up lines stay hidden
from bert import export_hub_module  # noqa: E402

if __name__ == "__main__":
    export_hub_module.main()
