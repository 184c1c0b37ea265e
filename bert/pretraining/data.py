"""Masked-LM / next-sentence training data from raw text, exactly as the original create_pretraining_data.

Input: plain text, one sentence per line, blank lines between documents. For the same files, vocabulary, flags
and seed, `create_pretraining_data` writes the same examples in the same order as the original: it makes the same
calls on one `random.Random(random_seed)` in the same order (document shuffle, short-target draws, segment splits,
random-next picks, truncation, candidate shuffles, 80/10/10 masking, final instance shuffle), including the
original's quirks under Python 3 (e.g. a "##" piece at the start of segment B joins the last word of segment A in
whole-word masking; masking is decided per piece even in whole-word mode).

It is faster than the original without changing a single draw: tokens become vocabulary ids once when a document
is read (not once per duplicate), truncation moves indexes instead of deleting list heads, each instance is
serialised as soon as it is made (so memory holds compact bytes, not token lists), and the TFRecords are written
without TensorFlow (`bert.pretraining.records`). `bert.pretraining.sharded` adds a parallel, memory-bounded mode.
"""

import dataclasses
import glob
import logging
import os
import random
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

from bert import tokenization
from bert.common.errors import UserError, UserFileNotFoundError
from bert.pretraining import records as pretraining_records

logger = logging.getLogger(__name__)

Segment = List[int]          # one input line (sentence) as WordPiece ids
Document = List[Segment]     # the non-empty lines between two blank lines

NUM_LOGGED_INSTANCES = 20


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """The original's generation flags (same names and defaults)."""

    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    random_seed: int = 12345
    dupe_factor: int = 10
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    do_whole_word_mask: bool = False

    def validate(self) -> None:
        """Rejects values for which the original would crash or silently write nothing."""
        if self.max_seq_length < 5:
            raise UserError(f"max_seq_length={self.max_seq_length} is too small: [CLS] A [SEP] B [SEP] needs at "
                             f"least 5 positions")
        if self.max_predictions_per_seq < 0:
            raise UserError(f"max_predictions_per_seq={self.max_predictions_per_seq} must be >= 0")
        if self.dupe_factor < 1:
            raise UserError(f"dupe_factor={self.dupe_factor} must be >= 1 (0 writes no examples)")
        for name in ("masked_lm_prob", "short_seq_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserError(f"{name}={value} must be a probability in [0, 1]")


@dataclasses.dataclass
class TrainingInstance:
    """One [CLS] A [SEP] B [SEP] sequence after masking, as vocabulary ids (unpadded)."""

    input_ids: List[int]
    segment_ids: List[int]
    masked_lm_positions: List[int]
    masked_lm_ids: List[int]  # the original ids at masked_lm_positions, ascending positions
    is_random_next: bool

    def describe(self, inv_vocab: dict) -> str:
        """Human-readable tokens and targets, for logs."""
        tokens = " ".join(tokenization.printable_text(inv_vocab.get(i, "?")) for i in self.input_ids)
        labels = " ".join(tokenization.printable_text(inv_vocab.get(i, "?")) for i in self.masked_lm_ids)
        return (f"tokens: {tokens}\nsegment_ids: {' '.join(map(str, self.segment_ids))}\n"
                f"is_random_next: {self.is_random_next}\n"
                f"masked_lm_positions: {' '.join(map(str, self.masked_lm_positions))}\n"
                f"masked_lm_labels: {labels}")


class MaskingVocab:
    """The ids the generator needs, derived from a tokenizer vocabulary (token -> id, in file order).

    `replacement_ids` is the original's `vocab_words = list(vocab.keys())` as ids, so random replacement draws
    index the same list; a token repeated in the vocab file appears once there, with the id of its last line,
    just as `convert_tokens_to_ids` would give.
    """

    def __init__(self, vocab: dict):
        missing = [token for token in ("[CLS]", "[SEP]", "[MASK]") if token not in vocab]
        if missing:
            raise UserError(f"the vocabulary lacks {', '.join(missing)}, needed for pre-training data")
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        self.mask_id = vocab["[MASK]"]
        self.replacement_ids = list(vocab.values())
        self.subword_ids = frozenset(index for token, index in vocab.items() if token.startswith("##"))
        self.max_id = max(vocab.values())


# ----------------------------------------------------------------------------------------------------------------
# Reading documents
# ----------------------------------------------------------------------------------------------------------------


def expand_input_patterns(input_patterns: str) -> List[str]:
    """Files matched by a comma-separated list of glob patterns, pattern by pattern.

    Matches of one pattern come in directory order, unsorted, as the original's tf.gfile.Glob returns them
    (the order decides which documents come first); name files explicitly to fix the order across machines.

    Raises:
      FileNotFoundError: a pattern matches no file.
    """
    files = []
    for pattern in (p.strip() for p in input_patterns.split(",")):
        if not pattern:
            continue
        if "://" in pattern:
            import tensorflow.compat.v1 as tf  # only remote file systems need it

            matches = tf.io.gfile.glob(pattern)
        else:
            matches = glob.glob(pattern)
        matches = [m for m in matches if not os.path.isdir(m)]
        if not matches:
            raise UserFileNotFoundError(f"input pattern '{pattern}' matches no file")
        files.extend(matches)
    if not files:
        raise UserError("no input file given (input_file is empty)")
    return files


def read_lines(path: str) -> Iterator[str]:
    """Lines of a UTF-8 text file split on "\\n" only, as tf.gfile's readline does (a lone "\\r" stays)."""
    try:
        if "://" in path:
            import tensorflow.compat.v1 as tf  # only remote file systems need it

            with tf.io.gfile.GFile(path, "rb") as reader:
                for raw in reader:
                    yield raw.decode("utf-8")
            return
        with open(path, "r", encoding="utf-8", newline="\n") as reader:
            yield from reader
    except UnicodeDecodeError as error:
        raise UserError(f"input file {path} is not UTF-8 text: {error}") from None


def read_documents(lines: Iterable[str], tokenizer: tokenization.FullTokenizer) -> List[Document]:
    """Documents of WordPiece ids from `lines`: blank lines separate documents, lines without tokens vanish.

    Like the original, a document continues across a file boundary unless the file ends with a blank line, and
    empty documents are dropped at the end.
    """
    documents: List[Document] = [[]]
    tokenize, to_ids = tokenizer.tokenize, tokenizer.convert_tokens_to_ids
    for line in lines:
        line = line.strip()
        if not line:
            documents.append([])
            continue
        tokens = tokenize(line)
        if tokens:
            documents[-1].append(_ids_of(tokens, to_ids))
    return [document for document in documents if document]


def _ids_of(tokens: List[str], to_ids: Callable[[List[str]], List[int]]) -> List[int]:
    try:
        return to_ids(tokens)
    except KeyError as error:
        raise UserError(f"token {error} produced by the tokenizer is not in the vocabulary (does the vocab file "
                         f"have an [UNK] entry?)") from None


def check_documents(documents: Sequence[Document], source: str) -> None:
    """Fails when the documents cannot give next-sentence pairs: none at all, or none with two sentences."""
    if not documents:
        raise UserError(f"no text found in {source}: the corpus is empty (expected one sentence per line, blank "
                         f"lines between documents)")
    if not any(len(document) >= 2 for document in documents):
        raise UserError(f"no document in {source} has two or more sentences: next-sentence prediction needs "
                         f"one sentence per line and blank lines only between documents")


# ----------------------------------------------------------------------------------------------------------------
# The generation algorithm (every rng call as in the original, in the same order)
# ----------------------------------------------------------------------------------------------------------------


def _shuffle_by_getrandbits(items: list, rng: random.Random) -> None:
    """In-place Fisher-Yates shuffle making exactly the draws of CPython's `Random.shuffle`, only faster.

    `Random.shuffle` swaps item i (from the end down to 1) with item `_randbelow(i + 1)`, which draws
    `getrandbits(k)` with k = (i + 1).bit_length() until the value is <= i. Inlining that loop removes two
    Python-level calls per item, which matters because masking shuffles every sequence once.
    """
    getrandbits = rng.getrandbits
    for i in range(len(items) - 1, 0, -1):
        bound = i + 1
        bits = bound.bit_length()
        j = getrandbits(bits)
        while j >= bound:
            j = getrandbits(bits)
        items[i], items[j] = items[j], items[i]


def _inlined_shuffle_is_exact() -> bool:
    """Checks, once, that the inlined shuffle reproduces this Python's `Random.shuffle` (items and rng state)."""
    for seed in range(3):
        for length in (0, 1, 2, 3, 7, 64, 129, 300):
            reference_rng, inlined_rng = random.Random(seed), random.Random(seed)
            reference, inlined = list(range(length)), list(range(length))
            reference_rng.shuffle(reference)
            _shuffle_by_getrandbits(inlined, inlined_rng)
            if reference != inlined or reference_rng.getstate() != inlined_rng.getstate():
                return False
    return True


_INLINED_SHUFFLE_IS_EXACT = _inlined_shuffle_is_exact()


def shuffle(items: list, rng: random.Random) -> None:
    """`rng.shuffle(items)`, through the inlined loop when it is verified to make the very same draws."""
    if _INLINED_SHUFFLE_IS_EXACT and type(rng) is random.Random:
        _shuffle_by_getrandbits(items, rng)
    else:
        rng.shuffle(items)


def create_instances_from_document(all_documents: Sequence[Document], document_index: int,
                                   options: DataOptions, vocab: MaskingVocab,
                                   rng: random.Random) -> List[TrainingInstance]:
    """Instances from one document: chunks of sentences up to a target length split into segments A and B.

    B is the actual continuation half of the time (when the chunk has two or more sentences), otherwise text
    from a random other document; unused sentences of the chunk are then given back for the next chunk.
    """
    document = all_documents[document_index]
    max_num_tokens = options.max_seq_length - 3  # room for [CLS], [SEP], [SEP]
    target_seq_length = max_num_tokens
    if rng.random() < options.short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)

    instances = []
    chunk: List[Segment] = []
    chunk_length = 0
    i = 0
    while i < len(document):
        chunk.append(document[i])
        chunk_length += len(document[i])
        if i == len(document) - 1 or chunk_length >= target_seq_length:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = [token for segment in chunk[:a_end] for token in segment]
            if len(chunk) == 1 or rng.random() < 0.5:
                is_random_next = True
                tokens_b = _random_continuation(all_documents, document_index, target_seq_length - len(tokens_a),
                                                rng)
                i -= len(chunk) - a_end  # the chunk's unused sentences start the next chunk
            else:
                is_random_next = False
                tokens_b = [token for segment in chunk[a_end:] for token in segment]
            tokens_a, tokens_b = truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            instances.append(_masked_instance(tokens_a, tokens_b, is_random_next, options, vocab, rng))
            chunk = []
            chunk_length = 0
        i += 1
    return instances


def _random_continuation(all_documents: Sequence[Document], document_index: int, target_b_length: int,
                         rng: random.Random) -> List[int]:
    """Sentences from a random other document (10 tries to avoid this one), from a random start, up to a length."""
    for _ in range(10):
        random_document_index = rng.randint(0, len(all_documents) - 1)
        if random_document_index != document_index:
            break
    random_document = all_documents[random_document_index]
    tokens_b: List[int] = []
    for segment in random_document[rng.randint(0, len(random_document) - 1):]:
        tokens_b.extend(segment)
        if len(tokens_b) >= target_b_length:
            break
    return tokens_b


def truncate_seq_pair(tokens_a: List[int], tokens_b: List[int], max_num_tokens: int,
                      rng: random.Random) -> Tuple[List[int], List[int]]:
    """Trims the longer sequence one token at a time (front or back at random) until both fit together.

    Returns the trimmed copies; the draws are the original's (one `rng.random()` per removed token).
    """
    a_start, a_end, b_start, b_end = 0, len(tokens_a), 0, len(tokens_b)
    random_value = rng.random
    while (a_end - a_start) + (b_end - b_start) > max_num_tokens:
        if a_end - a_start > b_end - b_start:
            if random_value() < 0.5:
                a_start += 1
            else:
                a_end -= 1
        elif random_value() < 0.5:
            b_start += 1
        else:
            b_end -= 1
    return tokens_a[a_start:a_end], tokens_b[b_start:b_end]


def _masked_instance(tokens_a: List[int], tokens_b: List[int], is_random_next: bool, options: DataOptions,
                     vocab: MaskingVocab, rng: random.Random) -> TrainingInstance:
    if not tokens_a or not tokens_b:
        raise AssertionError("segments A and B must both be non-empty")
    input_ids = [vocab.cls_id, *tokens_a, vocab.sep_id, *tokens_b, vocab.sep_id]
    segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
    if options.do_whole_word_mask:
        candidates = _mask_candidates(input_ids, vocab, do_whole_word_mask=True)
    else:  # every position but [CLS] (0) and the two [SEP]s, without scanning for them
        candidates = [*range(1, len(tokens_a) + 1), *range(len(tokens_a) + 2, len(input_ids) - 1)]
    output_ids, positions, labels = _mask_candidates_at_random(
        input_ids, candidates, options.masked_lm_prob, options.max_predictions_per_seq, vocab, rng,
        options.do_whole_word_mask)
    return TrainingInstance(output_ids, segment_ids, positions, labels, is_random_next)


def create_masked_lm_predictions(input_ids: List[int], masked_lm_prob: float, max_predictions_per_seq: int,
                                 vocab: MaskingVocab, rng: random.Random,
                                 do_whole_word_mask: bool = False) -> Tuple[List[int], List[int], List[int]]:
    """Masks about `masked_lm_prob` of the pieces: 80% become [MASK], 10% stay, 10% become a random word.

    Returns (masked ids, masked positions ascending, original ids at those positions).
    """
    candidates = _mask_candidates(input_ids, vocab, do_whole_word_mask)
    return _mask_candidates_at_random(input_ids, candidates, masked_lm_prob, max_predictions_per_seq, vocab, rng,
                                      do_whole_word_mask)


def _mask_candidates_at_random(input_ids: List[int], candidates: list, masked_lm_prob: float,
                               max_predictions_per_seq: int, vocab: MaskingVocab, rng: random.Random,
                               do_whole_word_mask: bool) -> Tuple[List[int], List[int], List[int]]:
    shuffle(candidates, rng)
    num_to_predict = min(max_predictions_per_seq, max(1, int(round(len(input_ids) * masked_lm_prob))))
    if do_whole_word_mask:
        chosen = _choose_whole_words(candidates, num_to_predict)
    else:
        chosen = candidates[:num_to_predict]  # single pieces never overflow nor overlap

    output_ids = list(input_ids)
    random_value, replacements = rng.random, vocab.replacement_ids
    for index in chosen:
        if random_value() < 0.8:
            output_ids[index] = vocab.mask_id
        elif random_value() < 0.5:
            pass  # keep the original piece
        else:
            output_ids[index] = replacements[rng.randint(0, len(replacements) - 1)]
    positions = sorted(chosen)
    return output_ids, positions, [input_ids[p] for p in positions]


def _mask_candidates(input_ids: List[int], vocab: MaskingVocab, do_whole_word_mask: bool) -> list:
    """Positions that may be masked (all but [CLS]/[SEP]); in whole-word mode grouped into words.

    A "##" piece joins the previous candidate word even across the [SEP] between A and B (the original's rule).
    """
    special = (vocab.cls_id, vocab.sep_id)
    if not do_whole_word_mask:
        return [i for i, token in enumerate(input_ids) if token not in special]
    words: List[List[int]] = []
    subword_ids = vocab.subword_ids
    for i, token in enumerate(input_ids):
        if token in special:
            continue
        if words and token in subword_ids:
            words[-1].append(i)
        else:
            words.append([i])
    return words


def _choose_whole_words(words: List[List[int]], num_to_predict: int) -> List[int]:
    """Positions of the shuffled words taken in order, skipping words that would exceed `num_to_predict`.

    Words are disjoint by construction, so the original's "already covered" test never fires and is omitted.
    """
    chosen: List[int] = []
    for word in words:
        if len(chosen) >= num_to_predict:
            break
        if len(chosen) + len(word) > num_to_predict:
            continue
        chosen.extend(word)
    return chosen


def create_training_instances(documents: List[Document], options: DataOptions, vocab: MaskingVocab,
                              rng: random.Random) -> Iterator[TrainingInstance]:
    """Shuffles `documents` in place, then yields `dupe_factor` passes of instances over all of them.

    The caller shuffles what it keeps of the instances afterwards (the original's last draw), so instances can
    be serialised one by one instead of being held as token lists.
    """
    shuffle(documents, rng)
    for _ in range(options.dupe_factor):
        for document_index in range(len(documents)):
            yield from create_instances_from_document(documents, document_index, options, vocab, rng)


def serialized_instances(documents: List[Document], options: DataOptions, vocab: MaskingVocab,
                         rng: random.Random, inv_vocab: Optional[dict] = None) -> List[bytes]:
    """Every instance of `documents` as a serialized tf.train.Example, in the original's final (shuffled) order."""
    encoder = pretraining_records.ExampleEncoder(options.max_seq_length, options.max_predictions_per_seq,
                                                 vocab.max_id)
    payloads = []
    for instance in create_training_instances(documents, options, vocab, rng):
        if inv_vocab is not None and len(payloads) < NUM_LOGGED_INSTANCES:
            logger.info("*** Instance %d (before the final shuffle) ***\n%s", len(payloads),
                        instance.describe(inv_vocab))
        payloads.append(encoder.encode(instance.input_ids, instance.segment_ids, instance.masked_lm_positions,
                                       instance.masked_lm_ids, int(instance.is_random_next)))
    shuffle(payloads, rng)
    return payloads


# ----------------------------------------------------------------------------------------------------------------
# The whole job
# ----------------------------------------------------------------------------------------------------------------


def check_output_files(output_files: Sequence[str], input_files: Sequence[str]) -> None:
    """Refuses output paths that would clobber an input, repeat, or lie in a missing directory."""
    if not output_files or any(not path for path in output_files):
        raise UserError(f"output_file must name one or more files (comma-separated), got {list(output_files)}")
    if len({_canonical(path) for path in output_files}) != len(output_files):
        raise UserError(f"output_file names the same file twice: {list(output_files)}")
    inputs = {_canonical(path) for path in input_files}
    for path in output_files:
        if "://" in path:
            continue
        if _canonical(path) in inputs:
            raise UserError(f"output file {path} is also an input file; refusing to overwrite the corpus")
        if os.path.isdir(path):
            raise UserError(f"output file {path} is a directory")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise UserFileNotFoundError(f"directory {directory} of output file {path} does not exist")


def _canonical(path: str) -> str:
    return path if "://" in path else os.path.realpath(path)


def create_pretraining_data(input_files: Sequence[str], output_files: Sequence[str],
                            tokenizer: tokenization.FullTokenizer, options: DataOptions) -> int:
    """The original create_pretraining_data job in one process; returns the number of examples written."""
    options.validate()
    check_output_files(output_files, input_files)
    vocab = MaskingVocab(tokenizer.vocab)
    documents = read_documents((line for path in input_files for line in read_lines(path)), tokenizer)
    check_documents(documents, ", ".join(input_files))
    logger.info("Read %d documents from %d files", len(documents), len(input_files))
    payloads = serialized_instances(documents, options, vocab, random.Random(options.random_seed),
                                    tokenizer.inv_vocab)
    del documents
    with pretraining_records.RoundRobinRecordWriter(output_files) as writer:
        for payload in payloads:
            writer.write(payload)
    logger.info("Wrote %d total instances to %s", writer.num_written, ", ".join(output_files))
    return writer.num_written
