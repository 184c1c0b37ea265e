#!/usr/bin/env python
"""Convert a Hugging Face BERT directory to the original format; the program is bert/convert_hf_checkpoint.py
(also `python -m bert.convert_hf_checkpoint`)."""

import sys

from bert.runtime import logs

logs.quiet_start(sys.argv)  # before TensorFlow is imported: its start-up lines stay hidden
from bert import convert_hf_checkpoint  # noqa: E402

if __name__ == "__main__":
    convert_hf_checkpoint.main()
