#!/usr/bin/env python
"""Times scripts/extract_features.py end to end (process start to file written) against another extractor,
usually the original release's extract_features.py, on the same input, and checks the two outputs agree.

Example (the real MiniLM as an original-format checkpoint, 400 MRPC dev sentences, layers -1..-4, seq 128):
  python scripts/convert_hf_checkpoint.py --input_dir=$MINILM_HF_DIR --output_dir=/tmp/minilm
  python benchmarks/benchmark_extract_features.py --bert_config_file=/tmp/minilm/bert_config.json \
      --vocab_file=/tmp/minilm/vocab.txt --init_checkpoint=/tmp/minilm/bert_model.ckpt \
      --original_command="python tests/original_tf1.py /tmp/google-bert extract_features.py"

`--original_command` is run with the original's flags appended. The original is TF1 code (tf.contrib,
tf.flags); tests/original_tf1.py runs it unchanged under TF 2 (a checkout of google-research/bert in
/tmp/google-bert). Add --dynamic_padding to time our faster opt-in batching.
"""

import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np
from absl import app, flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.environ.get("BERT_SHARED_DIR", os.path.join(REPO_ROOT, "..", "shared"))
EXTRACT_FEATURES = os.path.join(REPO_ROOT, "scripts", "extract_features.py")

flags.DEFINE_string("bert_config_file", None, "bert_config.json of the model.")
flags.DEFINE_string("vocab_file", None, "vocab.txt of the model.")
flags.DEFINE_string("init_checkpoint", None, "The model's checkpoint (…/bert_model.ckpt).")
flags.DEFINE_string("input_file", None, "Text to extract from; default: sentences of --mrpc_file.")
flags.DEFINE_string("mrpc_file", os.path.join(SHARED_DIR, "data", "glue", "MRPC", "dev.tsv"),
                    "MRPC .tsv whose sentences (columns 3 and 4) make the input when --input_file is not given.")
flags.DEFINE_integer("num_lines", 400, "Input lines taken from --mrpc_file.")
flags.DEFINE_bool("pairs", False, "Make each line an MRPC pair \"a ||| b\" instead of one sentence.")
flags.DEFINE_string("layers", "-1,-2,-3,-4", "Layers to extract.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
flags.DEFINE_integer("batch_size", 32, "Prediction batch size.")
flags.DEFINE_string("original_command", None,
                    "Command running the extractor to compare with (gets the original's flags); omit to time "
                    "only ours.")
flags.DEFINE_bool("time_npz", True, "Also time our --output_format=npz.")
flags.DEFINE_bool("dynamic_padding", False, "Run ours with --dynamic_padding (length-sorted, trimmed batches).")
flags.DEFINE_string("work_dir", None, "Where inputs and outputs go; default a temporary folder, removed after.")
flags.mark_flags_as_required(["bert_config_file", "vocab_file", "init_checkpoint"])

FLAGS = flags.FLAGS


def mrpc_lines(path: str, num_lines: int, pairs: bool) -> List[str]:
    """The first `num_lines` sentences (or pairs) of an MRPC .tsv, in file order."""
    with open(path, encoding="utf-8-sig") as reader:
        rows = [line.rstrip("\n").split("\t") for line in reader][1:]
    if pairs:
        lines = [f"{row[3]} ||| {row[4]}" for row in rows]
    else:
        lines = [sentence for row in rows for sentence in (row[3], row[4])]
    if len(lines) < num_lines:
        raise ValueError(f"{path} yields only {len(lines)} lines, fewer than --num_lines={num_lines}")
    return lines[:num_lines]


def extractor_flags(input_file: str, output_file: str) -> List[str]:
    return [f"--input_file={input_file}", f"--output_file={output_file}", f"--vocab_file={FLAGS.vocab_file}",
            f"--bert_config_file={FLAGS.bert_config_file}", f"--init_checkpoint={FLAGS.init_checkpoint}",
            f"--layers={FLAGS.layers}", f"--max_seq_length={FLAGS.max_seq_length}",
            f"--batch_size={FLAGS.batch_size}"]


def timed_run(command: Sequence[str]) -> Tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of running `command`; fails with its stderr tail."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{completed.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def report(name: str, wall: float, cpu: float, num_lines: int, output_file: str,
           baseline: Optional[Tuple[float, float]]) -> None:
    size_mb = os.path.getsize(output_file) / 1e6
    line = (f"{name:<14} {wall:7.2f} s  {num_lines / wall:7.1f} lines/s  CPU {cpu:7.2f} s  "
            f"{size_mb:8.1f} MB")
    if baseline is not None:
        line += f"  speed-up {baseline[0] / wall:4.2f}x (CPU {baseline[1] / cpu:4.2f}x)"
    print(line, flush=True)


def record_values(record: dict) -> np.ndarray:
    """[num_tokens, num_layers, hidden] values of one JSON line."""
    return np.array([[layer["values"] for layer in entry["layers"]] for entry in record["features"]])


def compare_jsonl(ours: str, theirs: str) -> str:
    """'byte-identical', or the largest value difference and whether tokens and line count agree."""
    with open(ours, "rb") as a, open(theirs, "rb") as b:
        if a.read() == b.read():
            return "byte-identical"
    largest = 0.0
    with open(ours) as a, open(theirs) as b:
        for line_a, line_b in zip(a, b):
            record_a, record_b = json.loads(line_a), json.loads(line_b)
            if [f["token"] for f in record_a["features"]] != [f["token"] for f in record_b["features"]]:
                return f"tokens differ on line {record_a['linex_index']}"
            values_a, values_b = record_values(record_a), record_values(record_b)
            largest = max(largest, float(np.abs(values_a - values_b).max()))
    return f"same tokens, largest value difference {largest:.2g}"


def run_benchmark(work_dir: str) -> None:
    if FLAGS.input_file:
        input_file = FLAGS.input_file
        with open(input_file, encoding="utf-8") as reader:
            num_lines = sum(1 for _ in reader)
    else:
        lines = mrpc_lines(FLAGS.mrpc_file, FLAGS.num_lines, FLAGS.pairs)
        num_lines = len(lines)
        input_file = os.path.join(work_dir, "input.txt")
        with open(input_file, "w", encoding="utf-8") as writer:
            writer.write("\n".join(lines) + "\n")
    print(f"{num_lines} lines, layers {FLAGS.layers}, max_seq_length {FLAGS.max_seq_length}, "
          f"batch_size {FLAGS.batch_size}", flush=True)

    baseline = None
    original_output = os.path.join(work_dir, "original.jsonl")
    if FLAGS.original_command:
        command = shlex.split(FLAGS.original_command) + extractor_flags(input_file, original_output)
        baseline = timed_run(command)
        report("original jsonl", *baseline, num_lines, original_output, None)

    ours_output = os.path.join(work_dir, "ours.jsonl")
    ours_command = [sys.executable, EXTRACT_FEATURES] + (["--dynamic_padding"] if FLAGS.dynamic_padding else [])
    ours = timed_run(ours_command + extractor_flags(input_file, ours_output))
    report("ours jsonl", *ours, num_lines, ours_output, baseline)
    if FLAGS.time_npz:
        npz_output = os.path.join(work_dir, "ours.npz")
        npz = timed_run(ours_command + ["--output_format=npz"] + extractor_flags(input_file, npz_output))
        report("ours npz", *npz, num_lines, npz_output, baseline)
    if FLAGS.original_command:
        print(f"outputs: {compare_jsonl(ours_output, original_output)}")


def main(_):
    if FLAGS.work_dir:
        os.makedirs(FLAGS.work_dir, exist_ok=True)
        run_benchmark(FLAGS.work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="benchmark_extract_features_") as work_dir:
            run_benchmark(work_dir)


if __name__ == "__main__":
    app.run(main)
