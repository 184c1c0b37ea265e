"""SQuAD 1.1/2.0 (run_squad, evaluate_squad): data, model head, postprocessing, evaluation, job."""
