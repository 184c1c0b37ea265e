"""The create_pretraining_data program: masked-LM / next-sentence TFRecords from raw text (the original's flags).

Input: one sentence per line, blank lines between documents. With the default flags the output is exactly the
original's, example for example. --num_workers=N (new) switches to sharded generation: N processes, memory
bounded independently of the corpus size (see bert/pretraining/sharded.py for how shards and seeds are derived).
Importing this module defines no flags; `main()` defines them and runs the generation.

It also carries the public names of the original `create_pretraining_data.py` (`TrainingInstance`,
`create_training_instances`, `create_instances_from_document`, `create_masked_lm_predictions`,
`write_instance_to_example_files`, `truncate_seq_pair`) for code written against the original package. Those work
on token strings, as the original's did; they translate to and from the library's vocabulary ids and run the
library's generator, so the draws and results are the original's. Where the original read --do_whole_word_mask,
the function takes a `do_whole_word_mask` keyword argument (default False).
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

import dataclasses
import logging
import random
from typing import List, Sequence, Tuple

import tensorflow.compat.v1 as tf
from absl import flags

from bert import tokenization
from bert.pretraining import data as pretraining_data
from bert.pretraining import records as pretraining_records
from bert.pretraining import sharded as pretraining_sharded
from bert.runtime import flags as common_flags

FLAGS = flags.FLAGS

NUM_LOGGED_EXAMPLES = 20  # the original writer logs its first 20 examples


@dataclasses.dataclass
class TrainingInstance:
    """The original's instance: token strings (with [CLS]/[SEP]), and the masked positions with their labels."""

    tokens: List[str]
    segment_ids: List[int]
    masked_lm_positions: List[int]
    masked_lm_labels: List[str]
    is_random_next: bool

    def __str__(self) -> str:
        return (f"tokens: {' '.join(tokenization.printable_text(t) for t in self.tokens)}\n"
                f"segment_ids: {' '.join(map(str, self.segment_ids))}\n"
                f"is_random_next: {self.is_random_next}\n"
                f"masked_lm_positions: {' '.join(map(str, self.masked_lm_positions))}\n"
                f"masked_lm_labels: {' '.join(tokenization.printable_text(t) for t in self.masked_lm_labels)}\n\n")

    __repr__ = __str__


class _WordIds:
    """Token strings <-> ids for a word list: the original's `vocab_words`, an id being the position in it, so the
    library's random replacement draws pick the same words."""

    def __init__(self, vocab_words: Sequence[str]):
        self.words = list(vocab_words)
        self.ids = {word: index for index, word in enumerate(self.words)}
        self.masking_vocab = pretraining_data.MaskingVocab(self.ids)

    def to_ids(self, tokens: Sequence[str]) -> List[int]:
        try:
            return [self.ids[token] for token in tokens]
        except KeyError as error:
            raise ValueError(f"token {error} is not in vocab_words; tokens must come from the tokenizer's "
                             f"vocabulary") from None

    def to_tokens(self, ids: Sequence[int]) -> List[str]:
        return [self.words[i] for i in ids]


def _data_options(max_seq_length: int, short_seq_prob: float, masked_lm_prob: float, max_predictions_per_seq: int,
                  do_whole_word_mask: bool, dupe_factor: int = 1) -> pretraining_data.DataOptions:
    return pretraining_data.DataOptions(max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq,
                                        dupe_factor=dupe_factor, masked_lm_prob=masked_lm_prob,
                                        short_seq_prob=short_seq_prob, do_whole_word_mask=do_whole_word_mask)


def _with_tokens(instance: pretraining_data.TrainingInstance, to_tokens) -> TrainingInstance:
    return TrainingInstance(to_tokens(instance.input_ids), list(instance.segment_ids),
                            list(instance.masked_lm_positions), to_tokens(instance.masked_lm_ids),
                            instance.is_random_next)


def create_training_instances(input_files: Sequence[str], tokenizer: tokenization.FullTokenizer,
                              max_seq_length: int, dupe_factor: int, short_seq_prob: float, masked_lm_prob: float,
                              max_predictions_per_seq: int, rng: random.Random,
                              do_whole_word_mask: bool = False) -> List[TrainingInstance]:
    """All instances of the input files, shuffled: the original's function, on the library's generator."""
    lines = (line for path in input_files for line in pretraining_data.read_lines(path))
    documents = pretraining_data.read_documents(lines, tokenizer)
    options = _data_options(max_seq_length, short_seq_prob, masked_lm_prob, max_predictions_per_seq,
                            do_whole_word_mask, dupe_factor)
    vocab = pretraining_data.MaskingVocab(tokenizer.vocab)
    instances = list(pretraining_data.create_training_instances(documents, options, vocab, rng))
    pretraining_data.shuffle(instances, rng)
    return [_with_tokens(instance, tokenizer.convert_ids_to_tokens) for instance in instances]


def create_instances_from_document(all_documents: Sequence[Sequence[Sequence[str]]], document_index: int,
                                   max_seq_length: int, short_seq_prob: float, masked_lm_prob: float,
                                   max_predictions_per_seq: int, vocab_words: Sequence[str], rng: random.Random,
                                   do_whole_word_mask: bool = False) -> List[TrainingInstance]:
    """The instances of one document of token-string sentences (the original's function)."""
    words = _WordIds(vocab_words)
    documents = [[words.to_ids(segment) for segment in document] for document in all_documents]
    options = _data_options(max_seq_length, short_seq_prob, masked_lm_prob, max_predictions_per_seq,
                            do_whole_word_mask)
    instances = pretraining_data.create_instances_from_document(documents, document_index, options,
                                                                words.masking_vocab, rng)
    return [_with_tokens(instance, words.to_tokens) for instance in instances]


def create_masked_lm_predictions(tokens: Sequence[str], masked_lm_prob: float, max_predictions_per_seq: int,
                                 vocab_words: Sequence[str], rng: random.Random,
                                 do_whole_word_mask: bool = False) -> Tuple[List[str], List[int], List[str]]:
    """(output tokens, masked positions, original tokens at them), as the original returned."""
    words = _WordIds(vocab_words)
    output_ids, positions, label_ids = pretraining_data.create_masked_lm_predictions(
        words.to_ids(tokens), masked_lm_prob, max_predictions_per_seq, words.masking_vocab, rng,
        do_whole_word_mask=do_whole_word_mask)
    return words.to_tokens(output_ids), positions, words.to_tokens(label_ids)


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_num_tokens: int, rng: random.Random) -> None:
    """Trims the pair in place to `max_num_tokens` in all, as the original did (same draws)."""
    tokens_a[:], tokens_b[:] = pretraining_data.truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)


def write_instance_to_example_files(instances: Sequence[TrainingInstance], tokenizer: tokenization.FullTokenizer,
                                    max_seq_length: int, max_predictions_per_seq: int,
                                    output_files: Sequence[str]) -> None:
    """Writes the instances as the original's tf.train.Examples, round-robin over `output_files`."""
    encoder = pretraining_records.ExampleEncoder(max_seq_length, max_predictions_per_seq,
                                                 max(tokenizer.vocab.values()))
    with pretraining_records.RoundRobinRecordWriter(output_files) as writer:
        for index, instance in enumerate(instances):
            writer.write(encoder.encode(tokenizer.convert_tokens_to_ids(instance.tokens), instance.segment_ids,
                                        instance.masked_lm_positions,
                                        tokenizer.convert_tokens_to_ids(instance.masked_lm_labels),
                                        int(instance.is_random_next)))
            if index < NUM_LOGGED_EXAMPLES:
                tf.logging.info("*** Example ***\n%s", instance)
    tf.logging.info("Wrote %d total instances", writer.num_written)


def define_flags() -> None:
    """All flags of create_pretraining_data, with the original's names and defaults (plus the opt-in new ones)."""
    flags.DEFINE_string("input_file", None, "Input raw text file (or comma-separated list of files; globs allowed).")
    flags.DEFINE_string("output_file", None,
                        "Output TFRecord file (or comma-separated list of files, written in turn).")
    flags.DEFINE_string("vocab_file", None, "The vocabulary file that the BERT model was trained on.")
    flags.DEFINE_bool("do_lower_case", True,
                      "Lower-case the input text: True for uncased models, False for cased models.")
    common_flags.define_preserve_unused_tokens_flag()
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
            FLAGS.chars_per_shard, preserve_unused_tokens=FLAGS.preserve_unused_tokens)
    else:
        tokenizer = tokenization.FullTokenizer(vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
                                               preserve_unused_tokens=FLAGS.preserve_unused_tokens)
        pretraining_data.create_pretraining_data(input_files, output_files, tokenizer, options)


def main() -> None:
    define_flags()
    common_flags.run_program(generate_from_flags, required_flags=("input_file", "output_file", "vocab_file"))


if __name__ == "__main__":
    main()
