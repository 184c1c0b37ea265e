#!/usr/bin/env python
"""Fine-tune / evaluate / predict BERT on a GLUE-style classification task (the original's flags and files)."""

from absl import app, flags
import tensorflow.compat.v1 as tf

from bert import classifier_data, classifier_run, common_flags, estimator_utils

flags.DEFINE_string("data_dir", None, "The folder holding the task's .tsv files.")
flags.DEFINE_string("task_name", None, f"The task to run: one of {', '.join(sorted(classifier_data.PROCESSORS))}.")
common_flags.define_model_flags()
common_flags.define_output_dir_flag()
common_flags.define_fine_tuning_flags(max_seq_length=128)
common_flags.define_run_flags()
common_flags.define_tpu_flags()
common_flags.define_performance_flags()
common_flags.define_export_flag()

FLAGS = flags.FLAGS


def main(_):
    tf.logging.set_verbosity(tf.logging.INFO)
    settings = estimator_utils.RunSettings.from_flags(FLAGS)
    options = estimator_utils.dataclass_from_flags(classifier_run.ClassifierOptions, FLAGS, run=settings)
    classifier_run.run(options)


if __name__ == "__main__":
    for name in ("data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir"):
        flags.mark_flag_as_required(name)
    app.run(main)
