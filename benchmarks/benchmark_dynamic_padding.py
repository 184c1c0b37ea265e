"""Back-to-back speed of MRPC fine-tuning and prediction: the original, ours fixed, --dynamic_padding,
--group_by_length and --precision=bf16 on top.

Each variant runs run_classifier end to end as its own process, as a user would. Training speed is the
steady-state rate the logs report (the original's per-step TPUEstimator "examples/sec" lines, our progress
lines), over the steps after the first `--skip_steps` (so start-up, graph building and the first slow steps are
left out); prediction is the wall time
(and CPU time) of the whole --do_predict process: reading and tokenizing the test set, writing TFRecords, building
the graph, restoring the checkpoint, predicting and writing test_results.tsv. Each prediction's test_results.tsv is
compared with ours fixed. Variants alternate within each round, so a busy machine slows them alike.

    PYTHONPATH=$PWD python benchmarks/benchmark_dynamic_padding.py --model_dir=/tmp/dyn_minilm \\
      --predict_checkpoint=/tmp/mrpc_finetuned/model.ckpt-343 --original_bert_dir=/tmp/original_bert

`--original_bert_dir` is a checkout of google-research/bert (its run_classifier.py, modeling.py,
optimization.py, tokenization.py), run through tests/original_tf1.py; without it that row is
skipped.
"""

import dataclasses
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
from absl import app, flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.abspath(os.environ.get("BERT_SHARED_DIR", os.path.join(REPO_ROOT, "..", "shared")))

flags.DEFINE_string("model_dir", None, "Original-format model folder: bert_config.json, vocab.txt, bert_model.ckpt.")
flags.DEFINE_string("predict_checkpoint", None,
                    "Fine-tuned checkpoint to predict with (default: the model's bert_model.ckpt, whose head is "
                    "then random and differs between variants).")
flags.DEFINE_string("data_dir", os.path.join(SHARED_DIR, "data", "glue", "MRPC"), "GLUE MRPC folder.")
flags.DEFINE_string("original_bert_dir", None, "Checkout of google-research/bert; its row is skipped when unset.")
flags.DEFINE_integer("train_steps", 60, "Training steps per variant.")
flags.DEFINE_integer("skip_steps", 5, "Leading steps left out of the training rate.")
flags.DEFINE_integer("batch_size", 32, "Training and prediction batch size.")
flags.DEFINE_integer("max_seq_length", 128, "max_seq_length of every run.")
flags.DEFINE_integer("rounds", 1, "Rounds of all variants; the best of each is reported.")
flags.DEFINE_bool("train", True, "Measure training.")
flags.DEFINE_bool("predict", True, "Measure prediction.")
flags.DEFINE_string("work_dir", None, "Where runs write; default a new temporary folder.")
FLAGS = flags.FLAGS

MRPC_TRAIN_EXAMPLES = 3668
# The original logs TPUEstimator's rate after every step; ours logs a progress line every few steps with the
# rate since the previous line.
_ORIGINAL_STEP_RATE = re.compile(r"^INFO:tensorflow:examples/sec: ([0-9.eE+-]+)$", re.MULTILINE)
_OUR_PROGRESS_RATE = re.compile(r"^I [0-9:]+ step (\d+)/\d+ .* ([0-9.]+) examples/s", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    extra_flags: tuple = ()
    original: bool = False
    predicts: bool = True  # group_by_length changes training only


VARIANTS = (
    Variant("original", original=True),
    Variant("ours, fixed length"),
    Variant("ours --dynamic_padding", ("--dynamic_padding=true",)),
    Variant("ours --dynamic_padding --group_by_length", ("--dynamic_padding=true", "--group_by_length=true"),
            predicts=False),
    Variant("ours ... --precision=bf16", ("--dynamic_padding=true", "--group_by_length=true",
                                          "--precision=bf16")),
)


def command(variant: Variant) -> List[str]:
    if variant.original:
        return [sys.executable, os.path.join(REPO_ROOT, "tests", "original_tf1.py"), FLAGS.original_bert_dir,
                "run_classifier.py"]
    return [sys.executable, os.path.join(REPO_ROOT, "scripts", "run_classifier.py")] + list(variant.extra_flags)


def common_flags(output_dir: str, init_checkpoint: str) -> List[str]:
    return ["--task_name=MRPC", f"--data_dir={FLAGS.data_dir}",
            f"--vocab_file={os.path.join(FLAGS.model_dir, 'vocab.txt')}",
            f"--bert_config_file={os.path.join(FLAGS.model_dir, 'bert_config.json')}",
            f"--init_checkpoint={init_checkpoint}", f"--max_seq_length={FLAGS.max_seq_length}",
            f"--output_dir={output_dir}"]


def timed(arguments: List[str], log_path: str) -> Dict[str, float]:
    """Runs a process to completion; its wall and CPU (user + system) seconds. Fails with its log on error."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log_path, "w") as log:
        status = subprocess.run(arguments, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if status:
        raise RuntimeError(f"{' '.join(arguments[:3])} failed (status {status}); see {log_path}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu}


def logged_rates(log: str) -> List[Tuple[int, int, float]]:
    """(first step, last step, examples/s) of each interval a training log reports a rate for."""
    original = [float(rate) for rate in _ORIGINAL_STEP_RATE.findall(log)]
    if original:
        return [(step, step, rate) for step, rate in enumerate(original, start=1)]
    intervals, previous = [], 0
    for step, rate in _OUR_PROGRESS_RATE.findall(log):
        intervals.append((previous + 1, int(step), float(rate)))
        previous = int(step)
    return intervals


def steady_training_rate(log_path: str, skip_steps: int) -> float:
    """Examples/s over the logged intervals that start after the first `skip_steps` steps."""
    intervals = [(first, last, rate) for first, last, rate in logged_rates(open(log_path).read())
                 if first > skip_steps]
    if not intervals:
        raise RuntimeError(f"no examples/s lines after step {skip_steps} in {log_path}")
    steps = sum(last - first + 1 for first, last, _ in intervals)
    return steps / sum((last - first + 1) / rate for first, last, rate in intervals)


def measure_training(variant: Variant, work_dir: str, index: int) -> Dict[str, float]:
    output_dir = os.path.join(work_dir, f"train_{index}")
    epochs = FLAGS.train_steps * FLAGS.batch_size / MRPC_TRAIN_EXAMPLES + 1e-6
    arguments = command(variant) + common_flags(output_dir, os.path.join(FLAGS.model_dir, "bert_model.ckpt")) + [
        "--do_train=true", f"--train_batch_size={FLAGS.batch_size}", f"--num_train_epochs={epochs}",
        "--save_checkpoints_steps=100000"]
    times = timed(arguments, output_dir + ".log")
    return {"examples_per_second": steady_training_rate(output_dir + ".log", FLAGS.skip_steps), **times}


def measure_prediction(variant: Variant, work_dir: str, index: int) -> Dict[str, float]:
    output_dir = os.path.join(work_dir, f"predict_{index}")
    checkpoint = FLAGS.predict_checkpoint or os.path.join(FLAGS.model_dir, "bert_model.ckpt")
    arguments = command(variant) + common_flags(output_dir, checkpoint) + [
        "--do_predict=true", f"--predict_batch_size={FLAGS.batch_size}"]
    times = timed(arguments, output_dir + ".log")
    return {"results": np.loadtxt(os.path.join(output_dir, "test_results.tsv")), **times}


def best(runs: List[Dict[str, float]], key: str, larger: bool) -> Optional[Dict[str, float]]:
    if not runs:
        return None
    return (max if larger else min)(runs, key=lambda run: run[key])


def main(_):
    flags.mark_flag_as_required("model_dir")
    variants = [v for v in VARIANTS if not v.original or FLAGS.original_bert_dir]
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="benchmark_dynamic_padding_")
    os.makedirs(work_dir, exist_ok=True)
    train_runs = {v.name: [] for v in variants}
    predict_runs = {v.name: [] for v in variants}
    for round_index in range(FLAGS.rounds):
        for index, variant in enumerate(variants):
            run_id = round_index * len(variants) + index
            if FLAGS.train:
                train_runs[variant.name].append(measure_training(variant, work_dir, run_id))
                print(f"train   {variant.name}: {train_runs[variant.name][-1]['examples_per_second']:.1f} "
                      "examples/s", flush=True)
            if FLAGS.predict and variant.predicts:
                predict_runs[variant.name].append(measure_prediction(variant, work_dir, run_id))
                print(f"predict {variant.name}: {predict_runs[variant.name][-1]['wall']:.1f} s", flush=True)

    fixed = "ours, fixed length"
    fixed_train = best(train_runs[fixed], "examples_per_second", True)
    fixed_predict = best(predict_runs[fixed], "wall", False)
    print(f"\nMRPC, batch {FLAGS.batch_size}, max_seq_length {FLAGS.max_seq_length}, {FLAGS.train_steps} training "
          f"steps, best of {FLAGS.rounds} round(s); runs in {work_dir}")
    print("| variant | train examples/s | vs fixed | predict wall s | predict CPU s | vs fixed (wall) | "
          "test_results max diff vs fixed |")
    print("|---|---|---|---|---|---|---|")
    for variant in variants:
        train = best(train_runs[variant.name], "examples_per_second", True)
        predict = best(predict_runs[variant.name], "wall", False)
        cells = [variant.name]
        if train:
            cells += [f"{train['examples_per_second']:.1f}",
                      f"{train['examples_per_second'] / fixed_train['examples_per_second']:.2f}x"]
        else:
            cells += ["-", "-"]
        if predict:
            difference = float(np.max(np.abs(predict["results"] - fixed_predict["results"])))
            cells += [f"{predict['wall']:.1f}", f"{predict['cpu']:.1f}",
                      f"{fixed_predict['wall'] / predict['wall']:.2f}x", f"{difference:.1e}"]
        else:
            cells += ["-", "-", "-", "-"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    app.run(main)
