"""The run_classifier_with_tfhub program: run_classifier on a BERT from a TF1 Hub module (the original's flags).

    python -m bert.run_classifier_with_tfhub --task_name=MRPC --do_train=true --do_eval=true \
      --data_dir=$GLUE_DIR/MRPC --bert_hub_module_handle=/tmp/bert_module --output_dir=/tmp/mrpc_output

The module (a folder, or a URL hub can resolve, e.g. one of Google's BERT modules) brings its vocab and casing
(its tokenization_info signature) and weights. Like the original, the program still takes --bert_config_file,
--vocab_file, --do_lower_case and --init_checkpoint (it had them from run_classifier) and does not use them; a
warning says so when one is given. The job, its files and its metrics are run_classifier's (`bert.classifier.job`).
Needs tensorflow-hub 0.15.0 (`pip install .[hub]`). Importing this module defines no flags; `main()` defines them.
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

import tensorflow.compat.v1 as tf
from absl import flags

from bert.classifier import data as classifier_data
from bert.classifier import job as classifier_run
from bert.interop import hub_module
from bert.runtime import flags as common_flags
from bert.runtime.options import RunSettings, dataclass_from_flags
from bert.runtime.outputs import check_output_dir, output_dir_lock

FLAGS = flags.FLAGS
_MODEL_FLAGS_FROM_THE_MODULE = ("bert_config_file", "vocab_file", "do_lower_case", "init_checkpoint")
_GRAPH_FLAGS_THE_MODULE_FIXES = ("fast_kernels", "gradient_checkpointing")  # they change how BertModel is built


def define_flags() -> None:
    """bert_hub_module_handle plus the flags of run_classifier, as the original's (which imported them)."""
    flags.DEFINE_string("bert_hub_module_handle", None, "Handle for the BERT TF-Hub module: a folder or a URL.")
    flags.DEFINE_string("data_dir", None, "The folder holding the task's .tsv files.")
    flags.DEFINE_string("task_name", None,
                        f"The task to run: one of {', '.join(sorted(classifier_data.PROCESSORS))}.")
    common_flags.define_model_flags()  # not used: the module brings its own (kept so the original's commands run)
    common_flags.define_output_dir_flag()
    common_flags.define_fine_tuning_flags(max_seq_length=128)
    common_flags.define_training_run_flags()


def run_from_flags() -> None:
    """Reads the module's tokenization_info, then runs the classifier job with the module as its BERT."""
    check_output_dir(FLAGS.output_dir)
    for name in _MODEL_FLAGS_FROM_THE_MODULE:
        if FLAGS[name].present:
            tf.logging.warning("--%s is ignored: the Hub module brings the model, its vocab and casing", name)
    for name in _GRAPH_FLAGS_THE_MODULE_FIXES:
        if FLAGS[name].value:
            tf.logging.warning("--%s is ignored: the Hub module brings its encoder's graph ready-made", name)
    encoder = hub_module.HubEncoder(FLAGS.bert_hub_module_handle)
    options = dataclass_from_flags(
        classifier_run.ClassifierOptions, FLAGS, bert_config_file=None, vocab_file=None, init_checkpoint=None,
        do_lower_case=encoder.info.do_lower_case, run=RunSettings.from_flags(FLAGS))
    for line in common_flags.describe_run(options):
        tf.logging.info(line)
    with output_dir_lock(options.output_dir):
        classifier_run.run(options, encoder=encoder)


def main() -> None:
    define_flags()
    common_flags.run_program(run_from_flags,
                             required_flags=("data_dir", "task_name", "bert_hub_module_handle", "output_dir"))


if __name__ == "__main__":
    main()
