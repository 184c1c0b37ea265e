"""The run_classifier program: fine-tune, evaluate and predict a GLUE-style classifier (the original's flags).

    python -m bert.run_classifier --task_name=MRPC --do_train=true --data_dir=... --output_dir=...

Importing this module defines no flags; `main()` defines them and runs the job of `bert.classifier_run`.
"""

from bert import program_logging  # noqa: F401  (first: quiets TensorFlow's start-up before it is imported)
from absl import flags

from bert import classifier_data, classifier_run, common_flags


def define_flags() -> None:
    """All flags of run_classifier, with the original's names and defaults (plus the opt-in new ones)."""
    flags.DEFINE_string("data_dir", None, "The folder holding the task's .tsv files.")
    flags.DEFINE_string("task_name", None,
                        f"The task to run: one of {', '.join(sorted(classifier_data.PROCESSORS))}.")
    common_flags.define_model_flags()
    common_flags.define_output_dir_flag()
    common_flags.define_fine_tuning_flags(max_seq_length=128)
    common_flags.define_training_run_flags(with_export=True)


def main() -> None:
    define_flags()
    common_flags.run_task_script(
        classifier_run.ClassifierOptions, classifier_run.run,
        required_flags=("data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir"))


if __name__ == "__main__":
    main()
