"""create_pretraining_data for corpora larger than memory, on several cores.

The original holds every document and every instance of the corpus in memory and uses one core. Here the input
lines (all files, in order, as one stream) are cut into shards of about `chars_per_shard` characters, always
right after a blank line, i.e. between documents. Each shard is turned into instances by the original algorithm
(`bert.pretraining.data`) in a worker process, with its own generator `random.Random(random_seed + shard_index)`
(shard indexes count from 0 in corpus order). The main process writes the shards' examples in shard order,
round-robin over the output files, keeping at most `2 * num_workers` shards in flight, so memory depends on the
shard size and worker count, not on the corpus size.

Consequences, by design:
  * the output depends on the seed, the corpus and `chars_per_shard`, not on `num_workers` (any worker count
    gives the same files); a corpus that fits in one shard gives exactly the single-process output;
  * "random next sentence" text and the final shuffle stay within a shard, so keep shards large enough to hold
    many documents (the default, about 1M characters, holds thousands of typical paragraphs).
"""

import collections
import concurrent.futures
import dataclasses
import itertools
import logging
import multiprocessing
import random
from typing import Iterable, Iterator, List, Optional, Sequence

from bert import tokenization
from bert.common.errors import UserError
from bert.pretraining import data as pretraining_data
from bert.pretraining import records as pretraining_records
from bert.pretraining.data import DataOptions

logger = logging.getLogger(__name__)

DEFAULT_CHARS_PER_SHARD = 1_000_000


@dataclasses.dataclass
class Shard:
    index: int
    lines: List[str]


@dataclasses.dataclass
class ShardResult:
    index: int
    records: List[bytes]  # complete TFRecord entries (framed, checksummed)


def shard_seed(random_seed: int, shard_index: int) -> int:
    """The seed of shard `shard_index`'s generator: shard 0 uses random_seed itself."""
    return random_seed + shard_index


class DocumentStats:
    """Counts documents (blank-line separated groups of non-blank lines) as lines stream past."""

    def __init__(self):
        self.num_documents = 0
        self.num_multi_sentence_documents = 0
        self._lines_in_document = 0

    def add(self, is_blank: bool) -> None:
        if is_blank:
            self._lines_in_document = 0
            return
        self._lines_in_document += 1
        if self._lines_in_document == 1:
            self.num_documents += 1
        elif self._lines_in_document == 2:
            self.num_multi_sentence_documents += 1


def split_into_shards(lines: Iterable[str], chars_per_shard: int,
                      stats: Optional[DocumentStats] = None) -> Iterator[Shard]:
    """Shards of consecutive lines, each cut after the first blank line once it holds `chars_per_shard` chars."""
    if chars_per_shard < 1:
        raise UserError(f"chars_per_shard={chars_per_shard} must be >= 1")
    stats = stats if stats is not None else DocumentStats()
    shard_lines: List[str] = []
    shard_chars = 0
    index = 0
    for line in lines:
        is_blank = not line.strip()
        stats.add(is_blank)
        shard_lines.append(line)
        shard_chars += len(line)
        if is_blank and shard_chars >= chars_per_shard:
            yield Shard(index, shard_lines)
            index += 1
            shard_lines, shard_chars = [], 0
    if shard_lines:
        yield Shard(index, shard_lines)


class ShardProcessor:
    """Turns one shard into framed TFRecord entries; one per process, keeping its tokenizer and its caches."""

    def __init__(self, vocab_file: str, do_lower_case: bool, options: DataOptions,
                 preserve_unused_tokens: bool = False):
        self.tokenizer = tokenization.FullTokenizer(vocab_file=vocab_file, do_lower_case=do_lower_case,
                                                    preserve_unused_tokens=preserve_unused_tokens)
        self.vocab = pretraining_data.MaskingVocab(self.tokenizer.vocab)
        self.options = options

    def __call__(self, shard: Shard) -> ShardResult:
        documents = pretraining_data.read_documents(shard.lines, self.tokenizer)
        if not documents:
            return ShardResult(shard.index, [])
        rng = random.Random(shard_seed(self.options.random_seed, shard.index))
        payloads = pretraining_data.serialized_instances(documents, self.options, self.vocab, rng)
        return ShardResult(shard.index, pretraining_records.frame_records(payloads))


_worker_processor: Optional[ShardProcessor] = None


def _start_worker(vocab_file: str, do_lower_case: bool, options: DataOptions, preserve_unused_tokens: bool) -> None:
    global _worker_processor
    _worker_processor = ShardProcessor(vocab_file, do_lower_case, options, preserve_unused_tokens)


def _process_in_worker(shard: Shard) -> ShardResult:
    return _worker_processor(shard)


def _checked_shards(shards: Iterator[Shard], stats: DocumentStats, source: str) -> Iterator[Shard]:
    """`shards`, after reading ahead until some document with two sentences was seen (fails if none is).

    For any usable corpus that happens within the first shard. It runs before any output file is opened, so a
    corpus that fails creates no file.
    """
    buffered = []
    for shard in shards:
        buffered.append(shard)
        if stats.num_multi_sentence_documents:
            break
    if not stats.num_multi_sentence_documents:
        if not stats.num_documents:
            raise UserError(f"no text found in {source}: the corpus is empty (expected one sentence per line, "
                             f"blank lines between documents)")
        raise UserError(f"no document in {source} has two or more sentences: next-sentence prediction needs "
                         f"one sentence per line and blank lines only between documents")
    return itertools.chain(buffered, shards)


def create_pretraining_data_sharded(input_files: Sequence[str], output_files: Sequence[str], vocab_file: str,
                                    do_lower_case: bool, options: DataOptions, num_workers: int,
                                    chars_per_shard: int = DEFAULT_CHARS_PER_SHARD,
                                    preserve_unused_tokens: bool = False) -> int:
    """Writes the corpus's examples shard by shard with `num_workers` processes; returns how many were written."""
    if num_workers < 1:
        raise UserError(f"num_workers={num_workers} must be >= 1 for sharded generation")
    options.validate()
    pretraining_data.check_output_files(output_files, input_files)
    processor_args = (vocab_file, do_lower_case, options, preserve_unused_tokens)
    pretraining_data.MaskingVocab(tokenization.load_vocab(vocab_file))  # a bad vocabulary fails here, early
    stats = DocumentStats()
    lines = (line for path in input_files for line in pretraining_data.read_lines(path))
    shards = _checked_shards(split_into_shards(lines, chars_per_shard, stats), stats, ", ".join(input_files))
    with pretraining_records.RoundRobinRecordWriter(output_files) as writer:
        if num_workers == 1:
            processor = ShardProcessor(*processor_args)
            for shard in shards:
                writer.write_framed(processor(shard).records)
        else:
            _write_in_parallel(shards, writer, num_workers, processor_args)
    logger.info("Wrote %d total instances from %d documents to %s", writer.num_written, stats.num_documents,
                ", ".join(output_files))
    return writer.num_written


def _write_in_parallel(shards: Iterator[Shard], writer: pretraining_records.RoundRobinRecordWriter,
                       num_workers: int, processor_args: tuple) -> None:
    """Processes shards in worker processes, writing their results in shard order with a bounded window."""
    context = multiprocessing.get_context("spawn")  # safe even if this process has started threads (TF)
    with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context, initializer=_start_worker,
                                                initargs=processor_args) as pool:
        in_flight = collections.deque()
        try:
            for shard in shards:
                in_flight.append(pool.submit(_process_in_worker, shard))
                if len(in_flight) >= 2 * num_workers:
                    writer.write_framed(in_flight.popleft().result().records)
            while in_flight:
                writer.write_framed(in_flight.popleft().result().records)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # do not finish queued shards after a failure
            raise
