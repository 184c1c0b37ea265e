"""The main job (run_classifier on MRPC, scripts/run_mrpc_demo.sh's settings) on both stacks, back to back.

    python benchmarks/compare_stacks.py --model_dir=runs/minilm_l6_h384_uncased --mrpc_dir=$GLUE_DIR/MRPC \
        --python_a=.venv-tf2.21/bin/python --python_b=.venv-tf2.15/bin/python --rounds=1

Each round runs the same command (train, evaluate, predict the test set) with each Python in turn, A then B, into
fresh output folders, and reads the program's own figures: training examples/s ("Trained N steps ... examples/s",
start-up and checkpointing included), prediction examples/s ("Predicted N examples ...") and eval_results.txt.
Prints one markdown row per run and the median A/B ratios of the rounds.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from typing import Dict

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINED = re.compile(r"Trained \d+ steps in [\d.]+ s: ([\d.]+) examples/s")
PREDICTED = re.compile(r"Predicted \d+ examples in [\d.]+ s: ([\d.]+) examples/s")


def run_main_job(python: str, model_dir: str, mrpc_dir: str, output_dir: str, epochs: float) -> Dict[str, float]:
    command = [python, os.path.join(REPO_ROOT, "scripts", "run_classifier.py"), "--task_name=MRPC",
               "--do_train=true", "--do_eval=true", "--do_predict=true", f"--data_dir={mrpc_dir}",
               f"--vocab_file={model_dir}/vocab.txt", f"--bert_config_file={model_dir}/bert_config.json",
               f"--init_checkpoint={model_dir}/bert_model.ckpt", "--max_seq_length=128", "--train_batch_size=32",
               "--learning_rate=5e-5", f"--num_train_epochs={epochs}", "--seed=12345", "--dynamic_padding=true",
               f"--output_dir={output_dir}"]
    completed = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    if completed.returncode != 0:
        sys.exit(f"error: {python} failed:\n{completed.stderr[-3000:]}")
    version = subprocess.run([python, "-c", "import tensorflow as tf; print(tf.__version__)"], capture_output=True,
                             text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")).stdout.strip().splitlines()[-1]
    results = {}
    with open(os.path.join(output_dir, "eval_results.txt")) as reader:
        for line in reader:
            key, value = line.split("=")
            results[key.strip()] = float(value)
    return dict(tensorflow=version, train=float(TRAINED.search(completed.stderr).group(1)),
                predict=float(PREDICTED.findall(completed.stderr)[-1]), accuracy=results["eval_accuracy"],
                loss=results["eval_loss"], f1=results["eval_f1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="converted MiniLM (scripts/run_mrpc_demo.sh makes it)")
    parser.add_argument("--mrpc_dir", required=True)
    parser.add_argument("--python_a", required=True)
    parser.add_argument("--python_b", required=True)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--num_train_epochs", type=float, default=3.0)
    args = parser.parse_args()
    print("| run | TensorFlow | train ex/s | predict ex/s | eval_accuracy | eval_loss | eval_f1 |")
    print("|---|---|---|---|---|---|---|")
    ratios = {"train": [], "predict": []}
    for round_index in range(args.rounds):
        figures = {}
        for name, python in (("A", args.python_a), ("B", args.python_b)):
            with tempfile.TemporaryDirectory() as output_dir:
                figures[name] = run_main_job(python, args.model_dir, args.mrpc_dir, output_dir, args.num_train_epochs)
            f = figures[name]
            print(f"| {name}{round_index + 1} | {f['tensorflow']} | {f['train']:.1f} | {f['predict']:.1f} | "
                  f"{f['accuracy']:.3f} | {f['loss']:.3f} | {f['f1']:.3f} |", flush=True)
        for key in ratios:
            ratios[key].append(figures["A"][key] / figures["B"][key])
    print(f"\nA/B, median of {args.rounds} round(s): training {statistics.median(ratios['train']):.2f}x, "
          f"prediction {statistics.median(ratios['predict']):.2f}x")


if __name__ == "__main__":
    main()
