"""A tiny run_classifier job through the command line: its log (each line once, no TensorFlow noise, a run summary,
progress lines), the TensorBoard summaries of loss and learning rate, and the README's predict flow (a fresh
output_dir with --init_checkpoint=<training output_dir>/model.ckpt-N gives the training run's probabilities)."""

import glob
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from cli_helpers import run_script
from helpers import REPO_ROOT, make_tiny_model_dir
from task_data import write_mrpc_like

from bert.runtime import progress
from bert.runtime.specs import estimator_available

NUM_TRAIN, BATCH, EPOCHS, LOG_EVERY = 24, 4, 2, 4
TOTAL_STEPS = NUM_TRAIN // BATCH * EPOCHS  # 12
PROGRESS = re.compile(r"step (\d+)/(\d+)  loss (\d+\.\d+)  lr (\S+)  (\d+\.\d) examples/s  ETA \d+:\d\d:\d\d$")


def _command(model_dir, data_dir, output_dir, *extra):
    return ["--task_name=MRPC", f"--data_dir={data_dir}", f"--vocab_file={model_dir}/vocab.txt",
            f"--bert_config_file={model_dir}/bert_config.json", f"--output_dir={output_dir}",
            "--max_seq_length=16", f"--train_batch_size={BATCH}", f"--num_train_epochs={EPOCHS}",
            "--predict_batch_size=3", "--learning_rate=1e-3", "--seed=5", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_run")
    model_dir = make_tiny_model_dir(str(root / "model"))
    data_dir = write_mrpc_like(root / "data", num_train=NUM_TRAIN, num_dev=4, num_test=5)
    out = root / "A"
    completed = run_script("run_classifier", _command(model_dir, data_dir, out, f"--init_checkpoint={model_dir}/"
                                                      "bert_model.ckpt", "--do_train", "--do_predict",
                                                      f"--log_every_steps={LOG_EVERY}"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    return dict(root=root, model_dir=model_dir, data_dir=data_dir, out=out, log=completed.stderr)


@pytest.mark.slow
def test_log_is_short_single_and_quiet(trained):
    log = trained["log"]
    lines = [line for line in log.splitlines() if line.strip()]
    for noise in ("INFO:tensorflow:", "WARNING:tensorflow:", "deprecat", "oneDNN", "cuda", "TensorRT",
                  "Using config", "global_step/sec", "examples/sec", "Calling model_fn", "*** Example ***"):
        assert noise not in log, noise
    messages = [line.split(" ", 2)[2] for line in lines]
    # Two handlers (TensorFlow's and absl's) would print each record twice in a row.
    assert all(a != b for a, b in zip(messages, messages[1:])), "a line is printed twice"
    assert len(lines) < 40, log
    assert any(m.startswith("Run: train, predict; task_name=MRPC") for m in messages)
    assert any("precision=fp32" in m and "output_dir=" in m for m in messages)
    assert any(m.startswith("Predicted 5 examples in") for m in messages)


@pytest.mark.slow
def test_progress_lines_and_summaries(trained):
    progress = [PROGRESS.search(line) for line in trained["log"].splitlines()]
    progress = [match for match in progress if match]
    assert [int(m.group(1)) for m in progress] == list(range(LOG_EVERY, TOTAL_STEPS + 1, LOG_EVERY))
    assert all(int(m.group(2)) == TOTAL_STEPS for m in progress)
    assert all(0.0 < float(m.group(3)) < 5.0 for m in progress)
    # No warmup past step 1 (int(12 * 0.1) = 1): the rate decays linearly to 0 at the last step.
    expected_rates = [1e-3 * (1 - step / TOTAL_STEPS) for step in range(LOG_EVERY, TOTAL_STEPS + 1, LOG_EVERY)]
    assert [float(m.group(4)) for m in progress] == pytest.approx(expected_rates, rel=5e-3, abs=1e-12)
    summaries = {}
    for path in glob.glob(str(trained["out"] / "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                summaries.setdefault(value.tag, {})[event.step] = value.simple_value
    assert sorted(summaries["train/loss"]) == list(range(LOG_EVERY, TOTAL_STEPS + 1, LOG_EVERY))
    assert [summaries["train/loss"][int(m.group(1))] for m in progress] == pytest.approx(
        [float(m.group(3)) for m in progress], abs=1e-4)
    assert [summaries["train/learning_rate"][int(m.group(1))] for m in progress] == pytest.approx(
        expected_rates, rel=1e-5, abs=1e-12)


@pytest.mark.slow
def test_predict_with_fine_tuned_checkpoint_in_fresh_output_dir(trained):
    """The original README's flow, also showing TensorFlow's own lines with absl's --verbosity=1."""
    fresh = trained["root"] / "B"
    checkpoint = trained["out"] / f"model.ckpt-{TOTAL_STEPS}"
    completed = run_script("run_classifier", _command(trained["model_dir"], trained["data_dir"], fresh,
                                                      f"--init_checkpoint={checkpoint}", "--do_predict",
                                                      "--verbosity=1"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    # TensorFlow's own INFO lines (the session's, on either engine) and the original's example dump.
    assert "Graph was finalized" in completed.stderr and "*** Example ***" in completed.stderr
    assert ("Calling model_fn" in completed.stderr) == estimator_available()  # the Estimator's own lines
    in_training_dir = np.loadtxt(str(trained["out"] / "test_results.tsv"), delimiter="\t")
    in_fresh_dir = np.loadtxt(str(fresh / "test_results.tsv"), delimiter="\t")
    assert in_fresh_dir.shape == (5, 2)
    np.testing.assert_allclose(in_fresh_dir, in_training_dir, atol=1e-6)


@pytest.mark.parametrize("every,total,expected", [(0, 30, 2), (0, 12, 1), (0, 343, 18), (0, 40, 2), (7, 30, 7)])
def test_default_progress_interval_gives_at_most_twenty_lines(every, total, expected):
    interval = progress.progress_interval(every, total)
    assert interval == expected
    if every == 0:
        assert total // interval <= 20


def _benchmark_training_rate(log_text: str, skip_steps: int, tmp_path) -> float:
    """benchmarks/benchmark_dynamic_padding.py's steady training rate of a log (in a subprocess: the script defines
    absl flags at import)."""
    log_path = tmp_path / "train.log"
    log_path.write_text(log_text)
    code = ("import sys; sys.path.insert(0, 'benchmarks'); import benchmark_dynamic_padding as benchmark; "
            "print(benchmark.steady_training_rate(sys.argv[1], int(sys.argv[2])))")
    completed = subprocess.run([sys.executable, "-c", code, str(log_path), str(skip_steps)], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True)
    return float(completed.stdout)


@pytest.mark.slow
def test_dynamic_padding_benchmark_reads_our_progress_lines_and_the_originals_step_rates(trained, tmp_path):
    progress = [match for match in map(PROGRESS.search, trained["log"].splitlines()) if match]
    later = [float(m.group(5)) for m in progress if int(m.group(1)) > LOG_EVERY]  # intervals after step 4
    # Each interval is LOG_EVERY steps: the steady rate is their examples over their seconds.
    assert _benchmark_training_rate(trained["log"], LOG_EVERY, tmp_path) == pytest.approx(
        len(later) / sum(1.0 / rate for rate in later), rel=1e-6)
    original_log = "".join(f"INFO:tensorflow:examples/sec: {rate}\n" for rate in (1.0, 10.0, 40.0))
    assert _benchmark_training_rate(original_log, 1, tmp_path) == pytest.approx(2 / (1 / 10.0 + 1 / 40.0))
