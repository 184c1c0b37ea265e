"""The convert_hf_checkpoint program: a Hugging Face BERT folder (config.json, model.safetensors, vocab.txt) to
the original format (bert_model.ckpt.*, bert_config.json, vocab.txt), usable as --init_checkpoint.

    python -m bert.convert_hf_checkpoint --input_dir=HF_DIR --output_dir=OUT_DIR [--overwrite]

Importing this module defines no flags; `main()` defines them and runs `bert.interop.hf_checkpoint`.
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

import tensorflow.compat.v1 as tf
from absl import flags

from bert.interop import hf_checkpoint as checkpoint_conversion
from bert.runtime import flags as common_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("input_dir", None,
                        "HF model directory holding config.json, model.safetensors and vocab.txt.")
    flags.DEFINE_string("output_dir", None,
                        "Directory to write bert_model.ckpt.*, bert_config.json and vocab.txt into (created if "
                        "absent).")
    flags.DEFINE_bool("overwrite", False, "Replace a checkpoint, config or vocab already in output_dir.")


def convert_from_flags() -> None:
    """Converts and prints what was written and the --init_checkpoint value to use."""
    checkpoint_prefix = checkpoint_conversion.convert_hf_checkpoint(FLAGS.input_dir, FLAGS.output_dir,
                                                                    overwrite=FLAGS.overwrite)
    num_variables = len(tf.train.list_variables(checkpoint_prefix))
    print(f"Converted {FLAGS.input_dir} into {num_variables} variables; wrote:")
    for path in checkpoint_conversion.output_files(FLAGS.output_dir):
        print(f"  {path}")
    print(f"Use --init_checkpoint={checkpoint_prefix}")


def main() -> None:
    define_flags()
    common_flags.run_program(convert_from_flags, required_flags=("input_dir", "output_dir"))


if __name__ == "__main__":
    main()
