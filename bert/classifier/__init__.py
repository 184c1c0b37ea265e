"""Sentence (pair) classification (run_classifier): data, model head, job."""
