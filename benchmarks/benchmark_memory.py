"""[New] What gradient checkpointing buys: peak memory and step time with and without it, and the largest batch
that trains within a memory budget.

Each measurement is a separate run of benchmarks/benchmark.py (training only) in a child process, so every peak
resident-set figure is that of a whole process that built the graph and trained; nothing is shared between
variants. The variants run back to back, so their ratios are meaningful on a busy machine.

  python benchmarks/benchmark_memory.py --bert_config_file=configs/uncased_L-12_H-768_A-12.json \\
    --max_seq_length=512 --batch_size=4 --search_batch_sizes=4,6,8,12,16
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

import json
import os
import subprocess
import tempfile
from typing import Dict, List, Optional, Sequence

from absl import flags

from bert.common.errors import UserError
from bert.runtime import flags as common_flags

FLAGS = flags.FLAGS
BENCHMARK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark.py")
MIB = 2 ** 20


def define_flags() -> None:
    flags.DEFINE_string("bert_config_file", None, "Architecture to measure (random weights).")
    flags.DEFINE_integer("max_seq_length", 512, "Sequence length of the synthetic examples.")
    flags.DEFINE_integer("batch_size", 4, "Batch of the with/without comparison.")
    flags.DEFINE_integer("num_runs", 2, "Timed training steps per measurement (the median is reported).")
    flags.DEFINE_integer("num_warmup_runs", 1, "Untimed steps first.")
    flags.DEFINE_string("search_batch_sizes", "", "Comma-separated batch sizes to try for the memory budget "
                                                  "(ascending); empty skips the search.")
    flags.DEFINE_integer("budget_mb", None, "Memory budget (peak RSS, MiB) of the search; default: the peak of "
                                            "the run without checkpointing at --batch_size.")
    flags.DEFINE_bool("compare", True, "Measure with and without at --batch_size first (--nocompare: only the "
                                        "search, which then needs --budget_mb).")
    flags.DEFINE_string("output_json", None, "Append every measurement as a JSON line to this file.")


def measure_in_child(config_file: str, seq_length: int, batch_size: int, gradient_checkpointing: bool,
                     num_runs: int, num_warmup_runs: int) -> Dict:
    """One training measurement of benchmarks/benchmark.py in a new process; its JSON result (with peak_rss_bytes)."""
    with tempfile.TemporaryDirectory() as work:
        output = os.path.join(work, "result.jsonl")
        command = [sys.executable, BENCHMARK_SCRIPT, f"--bert_config_file={config_file}",
                   f"--max_seq_length={seq_length}", f"--batch_size={batch_size}", "--mode=train",
                   "--matmul_size=0", f"--num_runs={num_runs}", f"--num_warmup_runs={num_warmup_runs}",
                   f"--gradient_checkpointing={gradient_checkpointing}", f"--output_json={output}"]
        completed = subprocess.run(command, capture_output=True, text=True,
                                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
        with open(output) as f:
            result = json.loads(f.readline())
    result["seconds_per_step"] = batch_size / result["train_examples_per_second"]
    return result


def largest_batch_within(budget_bytes: int, batch_sizes: Sequence[int], measure) -> Optional[Dict]:
    """The measurement of the largest of the ascending `batch_sizes` whose peak RSS stays within the budget,
    trying them in order and stopping at the first that exceeds it; None when even the first does."""
    fitting = None
    for batch_size in batch_sizes:
        result = measure(batch_size)
        if result["peak_rss_bytes"] > budget_bytes:
            break
        fitting = result
    return fitting


def _row(result: Dict, reference: Optional[Dict] = None) -> str:
    ratios = "| - | -"
    if reference is not None:
        ratios = (f"| {result['peak_rss_bytes'] / reference['peak_rss_bytes']:.2f} | "
                  f"{result['seconds_per_step'] / reference['seconds_per_step']:.2f}")
    return (f"| {'on' if result['gradient_checkpointing'] else 'off'} | {result['batch']} | "
            f"{result['peak_rss_bytes'] / MIB:.0f} | {result['seconds_per_step']:.1f} {ratios} |")


def _parse_batches(text: str) -> List[int]:
    try:
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise UserError(f"--search_batch_sizes={text!r} must be comma-separated integers, e.g. 4,8,16") from error
    if batches != sorted(batches) or any(b < 1 for b in batches):
        raise UserError(f"--search_batch_sizes={text!r} must be positive and ascending")
    return batches


def run_all() -> None:
    if not FLAGS.bert_config_file or not os.path.isfile(FLAGS.bert_config_file):
        raise UserError(f"--bert_config_file={FLAGS.bert_config_file!r} is not a file; give a bert_config.json")
    search = _parse_batches(FLAGS.search_batch_sizes)
    measured = {}

    def measure(batch_size: int, checkpointing: bool) -> Dict:
        if (batch_size, checkpointing) in measured:
            return measured[batch_size, checkpointing]
        result = measured[batch_size, checkpointing] = measure_in_child(FLAGS.bert_config_file, FLAGS.max_seq_length, batch_size, checkpointing,
                                  FLAGS.num_runs, FLAGS.num_warmup_runs)
        if FLAGS.output_json:
            with open(FLAGS.output_json, "a") as f:
                f.write(json.dumps(result) + "\n")
        print("measured:", _row(result), flush=True)
        return result

    if not FLAGS.compare and not FLAGS.budget_mb:
        raise UserError("--nocompare needs --budget_mb (the default budget is the peak measured by the comparison)")
    if FLAGS.compare:
        plain = measure(FLAGS.batch_size, False)
        checkpointed = measure(FLAGS.batch_size, True)
        print(f"\nseq {FLAGS.max_seq_length}, batch {FLAGS.batch_size}:")
        print("| gradient checkpointing | batch | peak RSS (MiB) | s/step | memory ratio | time ratio |\n"
              "|---|---|---|---|---|---|")
        print(_row(plain))
        print(_row(checkpointed, plain))
    if not search:
        return
    budget = FLAGS.budget_mb * MIB if FLAGS.budget_mb else plain["peak_rss_bytes"]
    print(f"\nlargest batch within a peak RSS of {budget / MIB:.0f} MiB (tried {', '.join(map(str, search))}):")
    for checkpointing in (False, True):
        best = largest_batch_within(budget, search, lambda b, c=checkpointing: measure(b, c))
        print(f"gradient checkpointing {'on' if checkpointing else 'off'}: "
              + ("none fits" if best is None else _row(best)))


def main() -> None:
    define_flags()
    common_flags.run_program(run_all)


if __name__ == "__main__":
    main()
