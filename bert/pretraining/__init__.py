"""Masked-LM / next-sentence pre-training (create_pretraining_data, run_pretraining): data, records, heads and job."""
