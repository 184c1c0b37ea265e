#!/usr/bin/env python
"""Convert a Hugging Face BERT directory (config.json, model.safetensors, vocab.txt) to the original format."""

from absl import app, flags
import tensorflow.compat.v1 as tf

from bert import checkpoint_conversion

flags.DEFINE_string("input_dir", None, "HF model directory holding config.json, model.safetensors and vocab.txt.")
flags.DEFINE_string("output_dir", None,
                    "Directory to write bert_model.ckpt.*, bert_config.json and vocab.txt into (created if absent).")
flags.DEFINE_bool("overwrite", False, "Replace a checkpoint, config or vocab already in output_dir.")

FLAGS = flags.FLAGS


def main(_):
    try:
        checkpoint_prefix = checkpoint_conversion.convert_hf_checkpoint(FLAGS.input_dir, FLAGS.output_dir,
                                                                        overwrite=FLAGS.overwrite)
    except (OSError, ValueError) as error:
        # Bad input or an occupied output_dir: the message says what to fix, a traceback would only hide it.
        raise SystemExit(f"convert_hf_checkpoint: {error}") from None
    num_variables = len(tf.train.list_variables(checkpoint_prefix))
    print(f"Converted {FLAGS.input_dir} into {num_variables} variables; wrote:")
    for path in checkpoint_conversion.output_files(FLAGS.output_dir):
        print(f"  {path}")
    print(f"Use --init_checkpoint={checkpoint_prefix}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["input_dir", "output_dir"])
    app.run(main)
