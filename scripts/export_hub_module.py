#!/usr/bin/env python
"""Writes a TF1 Hub module of a BERT checkpoint; the program is bert/export_hub_module.py (also `python -m bert.export_hub_module`)."""

from bert import export_hub_module

if __name__ == "__main__":
    export_hub_module.main()
