"""The run_pretraining program: masked-LM / next-sentence pre-training on create_pretraining_data TFRecords.

Training resumes from the newest checkpoint in --output_dir; evaluation writes output_dir/eval_results.txt.
Importing this module defines no flags; `main()` defines them and runs the job of `bert.pretraining.job`.
It also carries the public names of the original `run_pretraining.py` (`model_fn_builder`, `get_masked_lm_output`,
`get_next_sentence_output`, `gather_indexes`, `input_fn_builder`) for code written against the original package.
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

from typing import Sequence

from absl import flags

from bert.pretraining import job as pretraining
from bert.runtime import flags as common_flags
from bert.runtime import input_pipeline

# The original run_pretraining.py's public names (same arguments, defaults and results).
model_fn_builder = pretraining.model_fn_builder
get_masked_lm_output = pretraining.get_masked_lm_output
get_next_sentence_output = pretraining.get_next_sentence_output
gather_indexes = pretraining.gather_indexes


def input_fn_builder(input_files: Sequence[str], max_seq_length: int, max_predictions_per_seq: int,
                     is_training: bool, num_cpu_threads: int = pretraining.NUM_CPU_THREADS):
    """The original's input_fn over create_pretraining_data files: whole batches only; evaluation repeats the
    data (the caller bounds it with steps)."""
    spec = pretraining.pretraining_feature_spec(max_seq_length, max_predictions_per_seq)
    return input_pipeline.input_fn_builder(input_files, spec, is_training, drop_remainder=True,
                                           num_cpu_threads=num_cpu_threads, repeat_eval=not is_training)


def define_flags() -> None:
    """All flags of run_pretraining, with the original's names and defaults (plus the opt-in new ones)."""
    flags.DEFINE_string("input_file", None, "Input TFRecord files (comma-separated; globs allowed).")
    common_flags.define_model_flags(with_vocab=False)
    common_flags.define_output_dir_flag()
    flags.DEFINE_integer("max_seq_length", 128,
                         "Total WordPiece sequence length; must match the data generation (checked on the data).")
    flags.DEFINE_integer("max_predictions_per_seq", 20,
                         "Masked LM predictions per sequence; must match the data generation (checked on the data).")
    flags.DEFINE_bool("do_train", False, "Whether to run training.")
    flags.DEFINE_bool("do_eval", False, "Whether to run eval on the input files.")
    flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
    flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
    flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for Adam.")
    flags.DEFINE_integer("num_train_steps", 100000, "Number of training steps.")
    flags.DEFINE_integer("num_warmup_steps", 10000, "Number of warmup steps.")
    flags.DEFINE_integer("max_eval_steps", 100, "Maximum number of eval steps.")
    flags.DEFINE_string("vocab_file", None,
                        "[New, optional] The vocabulary the data was made with: checked to fit the config's "
                        "vocab_size.")
    common_flags.define_training_run_flags()
    common_flags.define_dynamic_padding_flag()


def main() -> None:
    define_flags()
    common_flags.run_task_script(pretraining.PretrainingOptions, pretraining.run,
                                 required_flags=("input_file", "bert_config_file", "output_dir"))


if __name__ == "__main__":
    main()
