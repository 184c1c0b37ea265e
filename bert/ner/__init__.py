"""Named-entity recognition (run_ner): CoNLL data, model head, entity metrics, job."""
