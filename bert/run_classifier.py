"""The run_classifier program: fine-tune, evaluate and predict a GLUE-style classifier (the original's flags).

    python -m bert.run_classifier --task_name=MRPC --do_train=true --data_dir=... --output_dir=...

Importing this module defines no flags; `main()` defines them and runs the job of `bert.classifier.job`.
It also carries the public names of the original `run_classifier.py` (`InputExample`,
`convert_examples_to_features`, `input_fn_builder`, `model_fn_builder`, ...) so code written against the original
package (`from bert import run_classifier`) keeps working; they are the library's own objects.
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

from absl import flags

from bert.classifier import data as classifier_data
from bert.classifier import job as classifier_run
from bert.classifier import model as classifier_model
from bert.runtime import flags as common_flags

# The original run_classifier.py's public names (same arguments, defaults and results).
InputExample = classifier_data.InputExample
PaddingInputExample = classifier_data.PaddingInputExample
InputFeatures = classifier_data.InputFeatures
DataProcessor = classifier_data.DataProcessor
XnliProcessor = classifier_data.XnliProcessor
MnliProcessor = classifier_data.MnliProcessor
MrpcProcessor = classifier_data.MrpcProcessor
ColaProcessor = classifier_data.ColaProcessor
convert_single_example = classifier_data.convert_single_example
convert_examples_to_features = classifier_data.convert_examples_to_features
file_based_convert_examples_to_features = classifier_data.file_based_convert_examples_to_features
file_based_input_fn_builder = classifier_data.file_based_input_fn_builder
input_fn_builder = classifier_data.input_fn_builder
create_model = classifier_model.create_model
model_fn_builder = classifier_model.model_fn_builder


def define_flags() -> None:
    """All flags of run_classifier, with the original's names and defaults (plus the opt-in new ones)."""
    flags.DEFINE_string("data_dir", None, "The folder holding the task's .tsv files.")
    flags.DEFINE_string("task_name", None,
                        f"The task to run: one of {', '.join(sorted(classifier_data.PROCESSORS))}.")
    common_flags.define_fine_tuning_program_flags(max_seq_length=128)


def main() -> None:
    define_flags()
    common_flags.run_task_script(
        classifier_run.ClassifierOptions, classifier_run.run,
        required_flags=("data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir"))


if __name__ == "__main__":
    main()
