"""The export_hub_module program: a TF1 Hub module (`hub.Module` format, like Google's BERT modules) of any BERT
checkpoint.

    python -m bert.export_hub_module --bert_config_file=$BERT_DIR/bert_config.json \
      --init_checkpoint=$BERT_DIR/bert_model.ckpt --vocab_file=$BERT_DIR/vocab.txt --do_lower_case=True \
      --output_dir=/tmp/bert_module

Needs tensorflow-hub 0.15.0 (`pip install .[hub]`). Importing this module defines no flags; `main()` defines them
and runs `bert.interop.hub_module.export_module`.
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

from absl import flags

from bert.interop import hub_module
from bert.runtime import flags as common_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """bert_config_file, init_checkpoint, vocab_file, do_lower_case (the module's tokenization_info), output_dir."""
    common_flags.define_model_flags()
    flags.DEFINE_string("output_dir", None, "The folder to write the module into (a new folder).")


def export_from_flags() -> None:
    hub_module.export_module(FLAGS.bert_config_file, FLAGS.init_checkpoint, FLAGS.vocab_file, FLAGS.do_lower_case,
                             FLAGS.output_dir)


def main() -> None:
    define_flags()
    common_flags.run_program(
        export_from_flags,
        required_flags=("bert_config_file", "init_checkpoint", "vocab_file", "output_dir"))


if __name__ == "__main__":
    main()
