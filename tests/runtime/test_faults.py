"""What really happens to long runs, done to real processes: a second run into a busy output_dir, SIGTERM and
SIGINT mid-training, kill -9, divergence, a full disk, damaged checkpoints, unreachable gs:// paths and Cloud TPUs;
and files that appear whole or not at all."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import tensorflow.compat.v1 as tf
from cli_helpers import SCRIPTS, last_line
from helpers import make_tiny_model_dir, require
from task_data import write_mrpc_like

from bert.common.errors import UserError
from bert.common.file_io import written_then_renamed
from bert.features.extraction import JsonLinesWriter
from bert.pretraining.records import RoundRobinRecordWriter
from bert.runtime.input_pipeline import Feature, TFRecordFeatureWriter
from bert.runtime.outputs import LOCK_FILE, output_dir_lock

STEPS_PER_EPOCH = 6  # 48 examples, batch 8


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    return make_tiny_model_dir(str(root / "model")), write_mrpc_like(root / "data")


def classifier_command(tiny_run, output_dir, epochs=200, *flags):
    model_dir, data_dir = tiny_run
    return [sys.executable, os.path.join(SCRIPTS, "run_classifier.py"), "--task_name=MRPC", f"--data_dir={data_dir}",
            f"--vocab_file={model_dir}/vocab.txt", f"--bert_config_file={model_dir}/bert_config.json",
            f"--init_checkpoint={model_dir}/bert_model.ckpt", f"--output_dir={output_dir}", "--max_seq_length=32",
            "--train_batch_size=8", "--do_train=true", f"--num_train_epochs={epochs}", "--log_every_steps=1",
            "--save_checkpoints_steps=100000", "--seed=1", *flags]


def start_training(command):
    """Starts the run and returns it once it has trained a few steps (its progress lines say so)."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    lines = []
    for line in process.stderr:
        lines.append(line)
        if " step 3/" in line:
            return process, lines
    raise AssertionError("the run ended before training:\n" + "".join(lines[-30:]))


def finish(process, lines, timeout=120):
    remaining = process.communicate(timeout=timeout)[1]
    return process.returncode, "".join(lines) + remaining


def newest_step(output_dir):
    return int(tf.train.latest_checkpoint(str(output_dir)).rsplit("-", 1)[1])


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_the_current_step_and_the_same_command_resumes(tiny_run, tmp_path, signal_number):
    output_dir = tmp_path / "out"
    command = classifier_command(tiny_run, output_dir)
    process, lines = start_training(command)
    process.send_signal(signal_number)
    status, log = finish(process, lines)
    assert status == 128 + signal_number, log[-3000:]
    assert "Traceback" not in log
    step = newest_step(output_dir)
    assert step >= 3
    name = signal.Signals(signal_number).name
    assert last_line(log) == (f"error: stopped by {name} at step {step}: saved {output_dir}/model.ckpt-{step}; run "
                              "the same command to resume from it")
    # The same command, for fewer epochs so that it ends soon: it resumes from the saved step.
    resumed = subprocess.run(classifier_command(tiny_run, output_dir, epochs=(step + 4) / STEPS_PER_EPOCH),
                             capture_output=True, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Restoring parameters from {output_dir}/model.ckpt-{step}" in resumed.stderr
    assert newest_step(output_dir) == int((step + 4) / STEPS_PER_EPOCH * STEPS_PER_EPOCH)


@pytest.mark.slow
def test_a_second_run_into_a_busy_output_dir_is_refused_and_a_killed_runs_lock_is_taken_over(tiny_run, tmp_path):
    output_dir = tmp_path / "out"
    process, lines = start_training(classifier_command(tiny_run, output_dir))
    try:
        second = subprocess.run(classifier_command(tiny_run, output_dir, 1), capture_output=True, text=True,
                                env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert last_line(second.stderr).startswith(f"error: output_dir {output_dir} is in use by another run (pid "
                                                   f"{process.pid} on ")
    finally:
        process.kill()  # kill -9: the operating system releases its lock
        process.communicate()
    assert os.path.exists(output_dir / LOCK_FILE)  # left behind by the killed run
    third = subprocess.run(classifier_command(tiny_run, output_dir, 1), capture_output=True, text=True,
                           env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert third.returncode == 0, third.stderr[-3000:]
    assert not os.path.exists(output_dir / LOCK_FILE)


@pytest.mark.slow
def test_divergence_ends_in_one_line_naming_the_step_and_keeps_the_last_checkpoint(tiny_run, tmp_path):
    output_dir = tmp_path / "out"
    completed = subprocess.run(classifier_command(tiny_run, output_dir, 2, "--learning_rate=1e12"),
                               capture_output=True, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    line = last_line(completed.stderr)
    assert line.startswith("error: training diverged: the loss became NaN or infinite at step "), line
    assert f"{output_dir}/model.ckpt-0 stays the newest checkpoint" in line
    assert "--learning_rate" in line and "--precision=fp16" in line
    assert newest_step(output_dir) == 0


def test_the_lock_names_its_holder_and_is_gone_after_the_run(tmp_path):
    with output_dir_lock(str(tmp_path)):
        with pytest.raises(UserError, match=rf"is in use by another run \(pid {os.getpid()} on "):
            with output_dir_lock(str(tmp_path)):
                pass
    assert not os.path.exists(tmp_path / LOCK_FILE)
    with output_dir_lock(str(tmp_path)):  # free again
        pass


def test_a_file_being_written_is_not_under_its_name_until_complete(tmp_path):
    path = tmp_path / "eval_results.txt"
    path.write_text("old = 1\n")
    with pytest.raises(RuntimeError):
        with written_then_renamed(str(path)) as writer:
            writer.write("new = 2\n")
            assert path.read_text() == "old = 1\n"  # the old file stays whole while the new one is written
            raise RuntimeError("killed while writing")
    assert path.read_text() == "old = 1\n"
    assert os.listdir(tmp_path) == ["eval_results.txt"]  # no partial file left
    with written_then_renamed(str(path)) as writer:
        writer.write("new = 2\n")
    assert path.read_text() == "new = 2\n" and os.listdir(tmp_path) == ["eval_results.txt"]


@pytest.mark.slow
def test_kill_9_at_any_moment_leaves_no_half_written_results(tiny_run, tmp_path):
    """Killed at several points of a train/eval/predict run, the folder holds only whole files: a rerun of the same
    command finishes, and every results file present parses."""
    output_dir = tmp_path / "out"
    command = classifier_command(tiny_run, output_dir, 1) + ["--do_eval=true", "--do_predict=true"]
    for delay in (2.0, 4.0, 6.0, 8.0):
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
        time.sleep(delay)
        process.kill()
        process.wait()
        # A file under its own name is whole (a killed write leaves at most a `.partial-<pid>` file beside it).
        if (output_dir / "eval_results.txt").exists():
            keys = [line.split(" = ")[0] for line in (output_dir / "eval_results.txt").read_text().splitlines()]
            assert keys == ["eval_accuracy", "eval_f1", "eval_loss", "global_step", "loss"]
        if (output_dir / "test_results.tsv").exists():
            assert len((output_dir / "test_results.tsv").read_text().splitlines()) == 7
    completed = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len((output_dir / "test_results.tsv").read_text().splitlines()) == 7


@pytest.fixture(scope="module")
def trained_output_dir(tiny_run, tmp_path_factory):
    """A run's output_dir after one epoch of the tiny model (6 steps)."""
    output_dir = tmp_path_factory.mktemp("trained") / "out"
    completed = subprocess.run(classifier_command(tiny_run, output_dir, 1), capture_output=True, text=True,
                               env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert completed.returncode == 0, completed.stderr[-3000:]
    return output_dir


def folder_state(folder):
    return {path.name: (path.stat().st_size, path.stat().st_mtime_ns) for path in sorted(folder.iterdir())}


@pytest.mark.slow
@pytest.mark.parametrize("overrides,message", [
    ({"hidden_size": 48, "intermediate_size": 37}, "its bert/embeddings/word_embeddings has shape [{vocab}, 32], but "
                                                   "{config} gives [{vocab}, 48] (vocab_size={vocab}, hidden_size=48)"),
    ({"num_hidden_layers": 3}, "it has 2 encoder layers, but {config} gives num_hidden_layers=3"),
])
def test_another_models_output_dir_is_refused_naming_the_variable_and_config_values(
        tiny_run, trained_output_dir, tmp_path, overrides, message):
    other_model = make_tiny_model_dir(str(tmp_path / "other"), **overrides)
    config = f"{other_model}/bert_config.json"
    vocab = len(open(f"{other_model}/vocab.txt").read().split())
    before = folder_state(trained_output_dir)
    command = [arg if not arg.startswith(("--bert_config_file", "--init_checkpoint")) else
               arg.split("=")[0] + "=" + (config if "config" in arg else f"{other_model}/bert_model.ckpt")
               for arg in classifier_command(tiny_run, trained_output_dir, 2)]
    completed = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    line = last_line(completed.stderr)
    assert line.startswith(f"error: output_dir {trained_output_dir} holds checkpoint {trained_output_dir}/model.ckpt-6 "
                           "of another model: "), line
    assert message.format(vocab=vocab, config=config) in line
    assert folder_state(trained_output_dir) == before  # nothing touched


@pytest.mark.slow
def test_a_truncated_checkpoint_in_output_dir_is_named(tiny_run, trained_output_dir, tmp_path):
    output_dir = tmp_path / "out"
    shutil.copytree(trained_output_dir, output_dir)
    index = output_dir / "model.ckpt-6.index"
    index.write_bytes(index.read_bytes()[:40])  # an interrupted copy
    completed = subprocess.run(classifier_command(tiny_run, output_dir, 2), capture_output=True, text=True,
                               env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    line = last_line(completed.stderr)
    assert line.startswith(f"error: checkpoint {output_dir}/model.ckpt-6 cannot be read ("), line
    assert "truncated or damaged" in line


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB file system (tmpfs), for a disk that fills up during a run."""
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
                             capture_output=True).returncode == 0
    require(mounted, "permission to mount a small tmpfs (root), to fill a disk")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


@pytest.mark.slow
def test_a_full_disk_ends_in_one_line_and_the_previous_checkpoint_stays_the_newest(tiny_run, small_disk):
    output_dir = small_disk / "out"
    command = [arg if not arg.startswith("--save_checkpoints_steps") else "--save_checkpoints_steps=2"
               for arg in classifier_command(tiny_run, output_dir, 10)]
    completed = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    line = last_line(completed.stderr)
    assert line.startswith(f"error: no space left on the device of {output_dir}/"), line
    newest = tf.train.latest_checkpoint(str(output_dir))
    assert "each checkpoint here needs " in line and f"{newest} stays the newest checkpoint" in line
    reader = tf.train.load_checkpoint(newest)  # whole: every variable reads back
    assert all(reader.get_tensor(name) is not None for name in reader.get_variable_to_shape_map())


@pytest.mark.slow
def test_fp16_prediction_on_a_cpu_is_refused_instead_of_crashing(tiny_run, trained_output_dir, tmp_path):
    output_dir = tmp_path / "out"
    shutil.copytree(trained_output_dir, output_dir)
    command = [arg for arg in classifier_command(tiny_run, output_dir, 1) if arg != "--do_train=true"]
    completed = subprocess.run(command + ["--do_predict=true", "--precision=fp16"], capture_output=True, text=True,
                               env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    assert last_line(completed.stderr) == ("error: --precision=fp16 prediction needs a GPU: on a CPU TensorFlow's "
                                           "float16 kernels crash it; use --precision=bf16 (CPUs with bfloat16 "
                                           "units) or fp32")


@pytest.mark.parametrize("make_writer", [
    lambda path: RoundRobinRecordWriter([path]),
    lambda path: TFRecordFeatureWriter(path, [Feature("input_ids", (4,))]),
    lambda path: JsonLinesWriter(path, [-1]),
], ids=["pretraining_records", "task_records", "jsonl"])
def test_record_and_feature_files_appear_only_when_complete(tmp_path, make_writer):
    path = str(tmp_path / "output")
    with pytest.raises(RuntimeError):
        with make_writer(path):
            assert os.listdir(tmp_path) == [f"output.partial-{os.getpid()}"]
            raise RuntimeError("killed while writing")
    assert os.listdir(tmp_path) == []
    with make_writer(path):
        pass
    assert os.listdir(tmp_path) == ["output"]


@pytest.mark.slow
def test_a_truncated_init_checkpoint_is_named(tiny_run, tmp_path):
    model_dir, _ = tiny_run
    damaged = tmp_path / "damaged"
    shutil.copytree(model_dir, damaged)
    data_file = damaged / "bert_model.ckpt.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])  # an interrupted download
    command = [arg if not arg.startswith("--init_checkpoint") else f"--init_checkpoint={damaged}/bert_model.ckpt"
               for arg in classifier_command(tiny_run, tmp_path / "out", 1)]
    completed = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    assert last_line(completed.stderr) == (f"error: --init_checkpoint={damaged}/bert_model.ckpt: a data file is "
                                           "shorter than its index says (an interrupted download or copy): copy or "
                                           "download the checkpoint again")


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["output_dir", "init_checkpoint"])
def test_a_gs_path_that_cannot_be_reached_is_named_with_its_flag(tiny_run, tmp_path, flag):
    """Offline here, the bucket's host does not resolve; elsewhere, without credentials, access is denied: either
    way one line naming the flag."""
    value = f"gs://bert-tf-tests-no-such-bucket/{flag}"
    command = [arg if not arg.startswith(f"--{flag}=") else f"--{flag}={value}"
               for arg in classifier_command(tiny_run, tmp_path / "out", 1)]
    completed = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
                               timeout=300)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    line = last_line(completed.stderr)
    assert line.startswith(f"error: --{flag}={value}: cannot use {value}"), line
    assert line.endswith("Check the path, this machine's network, and its credentials for the bucket (gcloud auth "
                         "application-default login, or a service account with access to it)"), line


@pytest.mark.slow
@pytest.mark.needs_tf215
def test_a_cloud_tpu_that_cannot_be_found_is_named(tiny_run, tmp_path):
    command = classifier_command(tiny_run, tmp_path / "out", 1) + ["--use_tpu=true", "--tpu_name=bert-tf-no-such-tpu"]
    completed = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
                               timeout=300)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    line = last_line(completed.stderr)
    assert line.startswith("error: --tpu_name=bert-tf-no-such-tpu: cannot find or reach this Cloud TPU ("), line
    assert line.endswith("check --tpu_name, --tpu_zone and --gcp_project, and that this VM can reach the Cloud TPU "
                         "API"), line
