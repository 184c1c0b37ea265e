"""Other formats: Hugging Face checkpoints in, TF1 Hub modules out."""
