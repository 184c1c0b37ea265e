"""Fine-tuned models kept loaded, answering raw text (a Python predictor; the predict program uses it)."""
