"""The extract_features program: BERT's per-token layer outputs for every line of a text file (the original's
flags and JSON lines).

    python -m bert.extract_features --input_file=input.txt --output_file=features.jsonl \
      --vocab_file=$BERT_DIR/vocab.txt --bert_config_file=$BERT_DIR/bert_config.json \
      --init_checkpoint=$BERT_DIR/bert_model.ckpt --layers=-1,-2,-3,-4 --max_seq_length=128 --batch_size=8

One text per line; "text a ||| text b" is a sentence pair. Empty lines get a record with only [CLS] and [SEP].
Importing this module defines no flags; `main()` defines them and runs `bert.features.extraction`.
It also carries the public names of the original `extract_features.py` (`InputExample`, `InputFeatures`,
`read_examples`, `convert_examples_to_features`, `input_fn_builder`, `model_fn_builder`) for code written against
the original package.
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

from typing import Callable, Sequence

import tensorflow.compat.v1 as tf
from absl import flags

from bert import modeling
from bert.features import extraction as feature_extraction
from bert.runtime import flags as common_flags
from bert.runtime.performance import PerformanceSettings

FLAGS = flags.FLAGS

# The original extract_features.py's public names (same arguments, defaults and results).
InputExample = feature_extraction.InputExample
InputFeatures = feature_extraction.InputFeatures
read_examples = feature_extraction.read_examples
convert_examples_to_features = feature_extraction.convert_examples_to_features


def input_fn_builder(features: Sequence[InputFeatures], seq_length: int) -> Callable:
    """The original's in-memory prediction input_fn over converted features (small inputs, notebooks)."""

    def input_fn(params):
        def column(name, shape):
            return tf.constant([getattr(f, name) for f in features], shape=shape, dtype=tf.int32)

        n = len(features)
        dataset = tf.data.Dataset.from_tensor_slices({
            "unique_ids": column("unique_id", [n]),
            "input_ids": column("input_ids", [n, seq_length]),
            "input_mask": column("input_mask", [n, seq_length]),
            "input_type_ids": column("input_type_ids", [n, seq_length]),
        })
        return dataset.batch(params["batch_size"], drop_remainder=False)

    return input_fn


def model_fn_builder(bert_config: modeling.BertConfig, init_checkpoint: str, layer_indexes: Sequence[int],
                     use_tpu: bool, use_one_hot_embeddings: bool) -> Callable:
    """The library's model_fn with the original's prediction keys: `unique_id` and `layer_output_<i>` (layer
    `layer_indexes[i]`, [batch, seq_length, hidden])."""
    library_model_fn = feature_extraction.model_fn_builder(bert_config, init_checkpoint, layer_indexes, use_tpu,
                                                           use_one_hot_embeddings)

    def model_fn(features, labels, mode, params):
        spec = library_model_fn(features, labels, mode, params)
        predictions = {"unique_id": spec.predictions["unique_ids"]}
        for i in range(len(layer_indexes)):
            predictions[f"layer_output_{i}"] = spec.predictions["layer_outputs"][:, i]
        return spec._replace(predictions=predictions)

    return model_fn


def define_flags() -> None:
    """All flags of extract_features, with the original's names and defaults (plus the opt-in new ones)."""
    flags.DEFINE_string("input_file", None, "Text file with one input per line (\" ||| \" separates a pair).")
    flags.DEFINE_string("output_file", None, "Where to write the features; its folder must exist.")
    flags.DEFINE_string("layers", "-1,-2,-3,-4",
                        "Comma-separated encoder layers to output: -1 is the last, 0 the first.")
    common_flags.define_model_flags()
    common_flags.define_preserve_unused_tokens_flag()
    flags.DEFINE_integer("max_seq_length", 128,
                         "WordPiece tokens per input including [CLS]/[SEP]; longer inputs are truncated.")
    flags.DEFINE_integer("batch_size", 32, "Batch size for predictions.")
    common_flags.define_tpu_flags(with_cluster=False)
    flags.DEFINE_bool("use_one_hot_embeddings", False,
                      "Look up word embeddings by one-hot matmul instead of tf.gather (faster on TPU).")
    flags.DEFINE_enum("output_format", "jsonl", feature_extraction.OUTPUT_FORMATS,
                      "[New] jsonl: the original's JSON lines; npz: compact numpy arrays (see README).")
    flags.DEFINE_enum("npz_dtype", "float32", feature_extraction.NPZ_DTYPES,
                      "[New] Value type of --output_format=npz; float16 halves the file.")
    common_flags.define_performance_flags(training=False)
    common_flags.define_dynamic_padding_flag()
    common_flags.define_engine_flag()


def extract_from_flags() -> None:
    """Runs the extraction the flags describe and writes the output file."""
    extractor = feature_extraction.FeatureExtractor(
        bert_config=FLAGS.bert_config_file,
        init_checkpoint=FLAGS.init_checkpoint,
        vocab_file=FLAGS.vocab_file,
        layers=FLAGS.layers,
        max_seq_length=FLAGS.max_seq_length,
        batch_size=FLAGS.batch_size,
        do_lower_case=FLAGS.do_lower_case,
        use_one_hot_embeddings=FLAGS.use_one_hot_embeddings,
        use_tpu=FLAGS.use_tpu,
        master=FLAGS.master,
        num_tpu_cores=FLAGS.num_tpu_cores,
        performance=PerformanceSettings.from_flags(FLAGS),
        dynamic_padding=FLAGS.dynamic_padding,
        preserve_unused_tokens=FLAGS.preserve_unused_tokens,
        engine=FLAGS.engine)
    feature_extraction.write_features_file(extractor, FLAGS.input_file, FLAGS.output_file,
                                           output_format=FLAGS.output_format, npz_dtype=FLAGS.npz_dtype)


def main() -> None:
    define_flags()
    common_flags.run_program(
        extract_from_flags,
        required_flags=("input_file", "output_file", "vocab_file", "bert_config_file", "init_checkpoint"))


if __name__ == "__main__":
    main()
