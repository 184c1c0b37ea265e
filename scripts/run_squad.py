#!/usr/bin/env python
"""Fine-tune BERT on SQuAD 1.1 / 2.0 and predict answers (the original's flags and output files)."""

from absl import app, flags
import tensorflow.compat.v1 as tf

from bert import common_flags, estimator_utils, squad_run

flags.DEFINE_string("train_file", None, "SQuAD json for training, e.g. train-v1.1.json.")
flags.DEFINE_string("predict_file", None, "SQuAD json to predict answers for, e.g. dev-v1.1.json or test-v1.1.json.")
flags.DEFINE_integer("doc_stride", 128, "Tokens between the starts of consecutive windows over a long paragraph.")
flags.DEFINE_integer("max_query_length", 64, "Questions longer than this many tokens are truncated to it.")
flags.DEFINE_integer("n_best_size", 20, "How many candidate answers nbest_predictions.json lists per question.")
flags.DEFINE_integer("max_answer_length", 30,
                     "Longest answer (in tokens) that can be predicted; start and end are predicted separately.")
flags.DEFINE_bool("verbose_logging", False,
                  "Log every warning of answer post-processing (many are expected on a normal SQuAD run).")
flags.DEFINE_bool("version_2_with_negative", False, "SQuAD 2.0: some questions have no answer.")
flags.DEFINE_float("null_score_diff_threshold", 0.0,
                   "SQuAD 2.0: predict no answer when null score - best non-null score is above this.")
common_flags.define_model_flags()
common_flags.define_output_dir_flag()
common_flags.define_fine_tuning_flags(max_seq_length=384, with_eval=False)
common_flags.define_run_flags()
common_flags.define_tpu_flags()
common_flags.define_performance_flags()
common_flags.define_export_flag()

FLAGS = flags.FLAGS


def main(_):
    tf.logging.set_verbosity(tf.logging.INFO)
    settings = estimator_utils.RunSettings.from_flags(FLAGS)
    options = estimator_utils.dataclass_from_flags(squad_run.SquadOptions, FLAGS, run=settings)
    squad_run.run(options)


if __name__ == "__main__":
    for name in ("vocab_file", "bert_config_file", "output_dir"):
        flags.mark_flag_as_required(name)
    app.run(main)
