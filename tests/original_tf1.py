"""Runs a program of the original release (a google-research/bert checkout) under TensorFlow 2.15, unchanged.

    python tests/original_tf1.py ORIGINAL_BERT_DIR extract_features.py --input_file=... [flags]

`original_code.run_original_script` (tests/original_code.py) gives the original's `import tensorflow as tf` the TF 1
stand-in (`tensorflow.compat.v1` plus the `tf.contrib` members it uses); tests use this to compare our output with
the original program's. Nothing of the original is copied here.
"""

import sys

import original_code

if __name__ == "__main__":
    original_code.run_original_script(sys.argv[1], sys.argv[2], sys.argv[3:])
