"""Running a task: Estimator/TPUEstimator plumbing, flags, logs, speed and scale settings, sequence length,
input pipeline, shared encodings, export."""
