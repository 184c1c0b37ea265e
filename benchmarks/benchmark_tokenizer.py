#!/usr/bin/env python
"""Measures FullTokenizer.tokenize throughput (chars/s) of bert.tokenization, optionally against a reference
tokenization.py (e.g. the original release's), and checks that both produce identical tokens on the corpus.

Example:
  python benchmarks/benchmark_tokenizer.py --vocab_file=vocab.txt --corpus=lines.json \
      --reference_tokenization=/path/to/original/tokenization.py --repeats=5
"""

import json
import sys
import time
import types
from typing import List, Sequence, Tuple

from absl import app, flags

import harness
from bert import tokenization

FLAGS = flags.FLAGS
flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary file, one token per line.")
flags.DEFINE_string("corpus", None, "Texts to tokenize: a JSON list of strings, or a text file with one per line.")
flags.DEFINE_string("reference_tokenization", None, "Optional path of another tokenization.py to compare with.")
flags.DEFINE_integer("repeats", 3, "Timed passes over the corpus after the first one; the best is reported.")
flags.DEFINE_bool("do_lower_case", True, "Whether both tokenizers lower-case and strip accents.")
flags.mark_flags_as_required(["vocab_file", "corpus"])


def read_corpus(path: str) -> List[str]:
    """The texts in `path`: a JSON list of strings, or else every line of a UTF-8 text file."""
    with open(path, "r", encoding="utf-8") as reader:
        content = reader.read()
    if content.lstrip().startswith("["):
        texts = json.loads(content)
        if not all(isinstance(text, str) for text in texts):
            raise ValueError(f"{path}: a JSON corpus must be a list of strings")
        return texts
    return content.splitlines()


def _gfile_shim() -> types.ModuleType:
    """A stand-in `tensorflow` module whose tf.gfile.GFile reads local files like TensorFlow's does."""
    shim = types.ModuleType("tensorflow")
    shim.gfile = types.SimpleNamespace(GFile=lambda path, mode="r": open(path, mode, encoding="utf-8", newline="\n"))
    return shim


def load_reference(path: str) -> types.ModuleType:
    """Loads the tokenization module at `path`; `import tensorflow` inside it gets the gfile shim (fast, no TF)."""
    return harness.original_code().load_module(path, "reference_tokenization", _gfile_shim())


def measure(tokenizer, texts: Sequence[str], repeats: int) -> Tuple[List[List[str]], float, float]:
    """Tokens of every text, and seconds of the first (cold-cache) pass and of the best of `repeats` later ones."""
    start = time.perf_counter()
    outputs = [tokenizer.tokenize(text) for text in texts]
    first = time.perf_counter() - start
    best = first
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            tokenizer.tokenize(text)
        best = min(best, time.perf_counter() - start)
    return outputs, first, best


def report(name: str, num_chars: int, first: float, best: float) -> None:
    print(f"{name:>9}: {num_chars / first:12,.0f} chars/s first pass   {num_chars / best:12,.0f} chars/s best")


def main(argv: Sequence[str]) -> None:
    del argv
    texts = read_corpus(FLAGS.corpus)
    num_chars = sum(len(text) for text in texts)
    print(f"corpus: {len(texts):,} texts, {num_chars:,} chars; repeats: {FLAGS.repeats}")

    ours = tokenization.FullTokenizer(FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)
    our_tokens, our_first, our_best = measure(ours, texts, FLAGS.repeats)
    report("ours", num_chars, our_first, our_best)
    if not FLAGS.reference_tokenization:
        return

    reference_module = load_reference(FLAGS.reference_tokenization)
    reference = reference_module.FullTokenizer(vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)
    reference_tokens, reference_first, reference_best = measure(reference, texts, FLAGS.repeats)
    report("reference", num_chars, reference_first, reference_best)
    print(f" speed-up: {reference_first / our_first:.2f}x first pass, {reference_best / our_best:.2f}x best")

    differing = [i for i, (a, b) in enumerate(zip(our_tokens, reference_tokens)) if a != b]
    if differing:
        print(f"outputs identical: NO ({len(differing)} texts differ; first at index {differing[0]})")
        sys.exit(1)
    print(f"outputs identical: yes ({len(texts):,} texts)")


if __name__ == "__main__":
    app.run(main)
