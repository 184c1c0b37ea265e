"""The run_squad program: fine-tune BERT on SQuAD 1.1 / 2.0 and predict answers (the original's flags and files).

Importing this module defines no flags; `main()` defines them and runs the job of `bert.squad_run`.
"""

from bert import program_logging  # noqa: F401  (first: quiets TensorFlow's start-up before it is imported)
from absl import flags

from bert import common_flags, squad_run


def define_flags() -> None:
    """All flags of run_squad, with the original's names and defaults (plus the opt-in new ones)."""
    flags.DEFINE_string("train_file", None, "SQuAD json for training, e.g. train-v1.1.json.")
    flags.DEFINE_string("predict_file", None,
                        "SQuAD json to predict answers for, e.g. dev-v1.1.json or test-v1.1.json.")
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
    common_flags.define_training_run_flags(with_export=True)


def main() -> None:
    define_flags()
    common_flags.run_task_script(squad_run.SquadOptions, squad_run.run,
                                 required_flags=("vocab_file", "bert_config_file", "output_dir"))


if __name__ == "__main__":
    main()
