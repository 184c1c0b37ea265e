#!/usr/bin/env python
"""Wall time and peak memory of create_pretraining_data, default vs sharded mode, against corpus size.

The corpus is real text: MRPC sentences (train/dev/test, 8 sentences per document) and SQuAD contexts (one
document per paragraph, one sentence per line), written to a temporary folder. Scale k writes k copies of it as k
files, each copy with its documents in a different order. Every run is a child process of this script; its peak
memory is the largest sum of resident set sizes over its process tree (sampled from /proc every 20 ms, so worker
processes count), its CPU time (user + system, children included) comes from wait4.

With --original_script (the original create_pretraining_data.py, runnable with the TensorFlow in this venv, e.g.
through a tf.compat.v1 shim kept outside the project) the original runs too, and the default mode's files are
compared with its files byte for byte.

Example:
  python benchmarks/benchmark_pretraining_data.py --scales=1,4,16 --num_workers=2
"""

import csv
import filecmp
import glob
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Sequence

from absl import app, flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "scripts", "create_pretraining_data.py")
DEFAULT_SHARED_DIR = os.environ.get("BERT_SHARED_DIR", os.path.join(REPO_ROOT, "..", "shared"))
MRPC_SENTENCES_PER_DOCUMENT = 8
SAMPLE_SECONDS = 0.02

flags.DEFINE_string("shared_dir", DEFAULT_SHARED_DIR, "Folder holding data/glue/MRPC, data/squad and data/vocab.")
flags.DEFINE_string("vocab_file", None, "Vocabulary (default: data/vocab/bert_uncased_vocab.txt in shared_dir).")
flags.DEFINE_list("scales", ["1", "4", "16"], "Corpus sizes, in copies of the base corpus.")
flags.DEFINE_list("modes", ["default", "sharded"], "Modes to run: default, sharded.")
flags.DEFINE_integer("dupe_factor", 10, "create_pretraining_data --dupe_factor.")
flags.DEFINE_integer("num_workers", 2, "--num_workers of the sharded mode.")
flags.DEFINE_integer("chars_per_shard", 1_000_000, "--chars_per_shard of the sharded mode.")
flags.DEFINE_string("original_script", None, "[Optional] The original create_pretraining_data.py, to compare with.")
flags.DEFINE_integer("original_max_scale", 16, "Run the original only up to this scale (it is slow and large).")
flags.DEFINE_string("work_dir", None, "Where corpora and outputs go (default: a temporary folder, removed after).")
flags.DEFINE_string("json_output", None, "[Optional] Also write the measurements to this JSON file.")

FLAGS = flags.FLAGS


# ----------------------------------------------------------------------------------------------------------------
# The corpus
# ----------------------------------------------------------------------------------------------------------------


def _sentences_of(paragraph: str) -> List[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", paragraph.strip()) if s]


def base_documents(shared_dir: str) -> List[List[str]]:
    """MRPC sentences grouped in documents, then every SQuAD context as a document of its sentences."""
    documents = []
    for path in sorted(glob.glob(os.path.join(shared_dir, "data", "glue", "MRPC", "*.tsv"))):
        with open(path, encoding="utf-8-sig") as reader:
            rows = list(csv.reader(reader, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
        sentences = [sentence for row in rows for sentence in (row[3], row[4])]
        for start in range(0, len(sentences), MRPC_SENTENCES_PER_DOCUMENT):
            documents.append(sentences[start:start + MRPC_SENTENCES_PER_DOCUMENT])
    with open(os.path.join(shared_dir, "data", "squad", "squad_public.json"), encoding="utf-8") as reader:
        squad = json.load(reader)
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            documents.append(_sentences_of(paragraph["context"]))
    if not documents:
        raise FileNotFoundError(f"no MRPC or SQuAD text found under {shared_dir}/data")
    return documents


def write_corpus(documents: List[List[str]], scale: int, folder: str) -> List[str]:
    """`scale` files, each one copy of `documents` in its own order; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for copy_index in range(scale):
        ordered = list(documents)
        random.Random(copy_index).shuffle(ordered)
        path = os.path.join(folder, f"corpus_{copy_index:03d}.txt")
        with open(path, "w", encoding="utf-8") as writer:
            writer.write("\n\n".join("\n".join(document) for document in ordered) + "\n")
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------------------------------------
# Measuring a child process
# ----------------------------------------------------------------------------------------------------------------


def _children_by_parent() -> Dict[int, List[int]]:
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as reader:
                fields = reader.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _tree_rss_bytes(root: int) -> int:
    """Resident set size summed over `root` and all its descendants."""
    children = _children_by_parent()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as reader:
                total += int(reader.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total


def measure(command: Sequence[str], log_path: str) -> Dict[str, float]:
    """Runs `command`, returning wall seconds, CPU seconds and peak RSS (process tree, MB)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    with open(log_path, "w") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        peak = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _tree_rss_bytes(process.pid))
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {process.returncode}; see {log_path}")
    # ru_maxrss is not used: it includes this process's RSS inherited at fork time, before the exec.
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": peak / 2**20}


def count_records(paths: Sequence[str]) -> int:
    """Records in TFRecord files, from their length headers."""
    total = 0
    for path in paths:
        with open(path, "rb") as reader:
            while True:
                header = reader.read(12)
                if not header:
                    break
                (length,) = struct.unpack("<Q", header[:8])
                reader.seek(length + 4, os.SEEK_CUR)
                total += 1
    return total


def same_bytes(paths: Sequence[str], other_paths: Sequence[str]) -> bool:
    # Compared in small chunks: this process must stay small, or the next child would inherit its peak RSS.
    return all(filecmp.cmp(path, other, shallow=False) for path, other in zip(paths, other_paths))


# ----------------------------------------------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------------------------------------------


def command_for(mode: str, inputs: List[str], output: str, vocab_file: str) -> List[str]:
    script = FLAGS.original_script if mode == "original" else SCRIPT
    command = [sys.executable, script, f"--input_file={','.join(inputs)}", f"--output_file={output}",
               f"--vocab_file={vocab_file}", f"--dupe_factor={FLAGS.dupe_factor}"]
    if mode == "sharded":
        command += [f"--num_workers={FLAGS.num_workers}", f"--chars_per_shard={FLAGS.chars_per_shard}"]
    return command


def run_benchmark(work_dir: str) -> List[Dict[str, object]]:
    vocab_file = FLAGS.vocab_file or os.path.join(FLAGS.shared_dir, "data", "vocab", "bert_uncased_vocab.txt")
    documents = base_documents(FLAGS.shared_dir)
    rows = []
    for scale in (int(s) for s in FLAGS.scales):
        inputs = write_corpus(documents, scale, os.path.join(work_dir, f"corpus_x{scale}"))
        corpus_mb = sum(os.path.getsize(p) for p in inputs) / 2**20
        modes = list(FLAGS.modes)
        if FLAGS.original_script and scale <= FLAGS.original_max_scale:
            modes.insert(0, "original")
        outputs = {}
        for mode in modes:
            outputs[mode] = os.path.join(work_dir, f"x{scale}_{mode}.tfrecord")
            figures = measure(command_for(mode, inputs, outputs[mode], vocab_file),
                              os.path.join(work_dir, f"x{scale}_{mode}.log"))
            row = {"scale": scale, "corpus_mb": round(corpus_mb, 2), "mode": mode,
                   "instances": count_records([outputs[mode]]), **{k: round(v, 2) for k, v in figures.items()}}
            if mode == "default" and "original" in outputs:
                row["identical_to_original"] = same_bytes([outputs[mode]], [outputs["original"]])
            rows.append(row)
            print(row, flush=True)
        for path in outputs.values():
            os.remove(path)
    return rows


def markdown_table(rows: List[Dict[str, object]]) -> str:
    original = {row["scale"]: row for row in rows if row["mode"] == "original"}
    lines = ["| corpus | mode | instances | wall s | CPU s | peak RSS MB | speed-up vs original |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        reference = original.get(row["scale"])
        speedup = f"{reference['wall_s'] / row['wall_s']:.1f}x" if reference and row is not reference else ""
        if row.get("identical_to_original"):
            speedup += " (identical output)"
        lines.append(f"| {row['scale']}x ({row['corpus_mb']} MB) | {row['mode']} | {row['instances']} | "
                     f"{row['wall_s']} | {row['cpu_s']} | {row['peak_rss_mb']:.0f} | {speedup} |")
    return "\n".join(lines)


def main(_):
    unknown = set(FLAGS.modes) - {"default", "sharded"}
    if unknown:
        raise ValueError(f"unknown modes {sorted(unknown)}: use default and/or sharded")
    if FLAGS.work_dir:
        rows = run_benchmark(FLAGS.work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_pretraining_") as work_dir:
            rows = run_benchmark(work_dir)
    print(markdown_table(rows))
    if FLAGS.json_output:
        with open(FLAGS.json_output, "w") as writer:
            json.dump(rows, writer, indent=2)


if __name__ == "__main__":
    app.run(main)
