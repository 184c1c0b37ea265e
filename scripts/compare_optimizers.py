#!/usr/bin/env python
"""[New] AdamW against LAMB: pre-train a small BERT at a large batch and plot the MLM losses (bert.compare_optimizers)."""

from bert import compare_optimizers

if __name__ == "__main__":
    compare_optimizers.main()
