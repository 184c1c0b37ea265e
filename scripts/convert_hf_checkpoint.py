#!/usr/bin/env python
"""Convert a Hugging Face BERT directory to the original format; the program is bert/convert_hf_checkpoint.py
(also `python -m bert.convert_hf_checkpoint`)."""

from bert import convert_hf_checkpoint

if __name__ == "__main__":
    convert_hf_checkpoint.main()
