"""The create_pretraining_data program: masked-LM / next-sentence TFRecords from raw text (the original's flags).

Input: one sentence per line, blank lines between documents. With the default flags the output is exactly the
original's, example for example. --num_workers=N (new) switches to sharded generation: N processes, memory
bounded independently of the corpus size (see bert/pretraining_sharded.py for how shards and seeds are derived).
Importing this module defines no flags; `main()` defines them and runs the generation.
"""

from bert import program_logging  # noqa: F401  (first: quiets TensorFlow's start-up before it is imported)
import logging

from absl import flags

from bert import common_flags, pretraining_data, pretraining_sharded, tokenization

FLAGS = flags.FLAGS


def define_flags() -> None:
    """All flags of create_pretraining_data, with the original's names and defaults (plus the opt-in new ones)."""
    flags.DEFINE_string("input_file", None, "Input raw text file (or comma-separated list of files; globs allowed).")
    flags.DEFINE_string("output_file", None,
                        "Output TFRecord file (or comma-separated list of files, written in turn).")
    flags.DEFINE_string("vocab_file", None, "The vocabulary file that the BERT model was trained on.")
    flags.DEFINE_bool("do_lower_case", True,
                      "Lower-case the input text: True for uncased models, False for cased models.")
    flags.DEFINE_bool("do_whole_word_mask", False,
                      "Mask whole words (all their WordPieces) rather than single WordPieces.")
    flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
    flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum number of masked LM predictions per sequence.")
    flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
    flags.DEFINE_integer("dupe_factor", 10, "Number of times to duplicate the input data (with different masks).")
    flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
    flags.DEFINE_float("short_seq_prob", 0.1,
                       "Probability of creating sequences which are shorter than the maximum length.")
    flags.DEFINE_integer(
        "num_workers", 0,
        "[New] 0: the original single-process algorithm and output. N >= 1: sharded generation with N worker "
        "processes and memory bounded independently of the corpus size; the output depends on the seed and "
        "chars_per_shard, not on N.",
        lower_bound=0)
    flags.DEFINE_integer(
        "chars_per_shard", pretraining_sharded.DEFAULT_CHARS_PER_SHARD,
        "[New] With num_workers >= 1: characters of text per shard (cut between documents). Random next "
        "sentences and the shuffle stay within a shard.",
        lower_bound=1)


def data_options_from_flags() -> pretraining_data.DataOptions:
    return pretraining_data.DataOptions(
        max_seq_length=FLAGS.max_seq_length,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        random_seed=FLAGS.random_seed,
        dupe_factor=FLAGS.dupe_factor,
        masked_lm_prob=FLAGS.masked_lm_prob,
        short_seq_prob=FLAGS.short_seq_prob,
        do_whole_word_mask=FLAGS.do_whole_word_mask)


def generate_from_flags() -> None:
    """Writes the TFRecords the flags describe, in the original's mode or the sharded one."""
    logging.getLogger("bert").setLevel(logging.INFO)
    options = data_options_from_flags()
    input_files = pretraining_data.expand_input_patterns(FLAGS.input_file)
    output_files = [path.strip() for path in FLAGS.output_file.split(",")]
    logging.info("*** Reading from input files ***\n  %s", "\n  ".join(input_files))
    logging.info("*** Writing to output files ***\n  %s", "\n  ".join(output_files))
    if FLAGS.num_workers > 0:
        pretraining_sharded.create_pretraining_data_sharded(
            input_files, output_files, FLAGS.vocab_file, FLAGS.do_lower_case, options, FLAGS.num_workers,
            FLAGS.chars_per_shard)
    else:
        tokenizer = tokenization.FullTokenizer(vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)
        pretraining_data.create_pretraining_data(input_files, output_files, tokenizer, options)


def main() -> None:
    define_flags()
    common_flags.run_program(generate_from_flags, required_flags=("input_file", "output_file", "vocab_file"))


if __name__ == "__main__":
    main()
