#!/usr/bin/env python
"""Fine-tune / evaluate / predict BERT on a GLUE-style classification task (the original's flags and files)."""

from absl import flags

from bert import classifier_data, classifier_run, common_flags

flags.DEFINE_string("data_dir", None, "The folder holding the task's .tsv files.")
flags.DEFINE_string("task_name", None, f"The task to run: one of {', '.join(sorted(classifier_data.PROCESSORS))}.")
common_flags.define_model_flags()
common_flags.define_output_dir_flag()
common_flags.define_fine_tuning_flags(max_seq_length=128)
common_flags.define_training_run_flags(with_export=True)


if __name__ == "__main__":
    common_flags.run_task_script(
        classifier_run.ClassifierOptions, classifier_run.run,
        required_flags=("data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir"))
