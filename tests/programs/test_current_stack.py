"""On TensorFlow 2.16+ what only the 2.15 stack can do ends in one `error:` line that says so."""

import pytest
from cli_helpers import last_line, run_script
from helpers import make_tiny_model_dir
from task_data import write_mrpc_like

pytestmark = pytest.mark.needs_tf216  # TensorFlow 2.15 has the Estimator, TPU and hub.Module


@pytest.fixture(scope="module")
def classifier_args(tmp_path_factory):
    root = tmp_path_factory.mktemp("current_stack")
    model_dir = make_tiny_model_dir(str(root / "model"))
    data_dir = write_mrpc_like(root / "data", num_train=8, num_dev=4, num_test=2)
    return [f"--data_dir={data_dir}", "--task_name=MRPC", f"--vocab_file={model_dir}/vocab.txt",
            f"--bert_config_file={model_dir}/bert_config.json", f"--init_checkpoint={model_dir}/bert_model.ckpt",
            f"--output_dir={root / 'out'}", "--max_seq_length=32", "--train_batch_size=4", "--do_train=true"]


def assert_one_error_line(completed, *parts):
    assert completed.returncode == 1, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr
    line = last_line(completed.stderr)
    assert line.startswith("error: "), completed.stderr[-2000:]
    for part in parts:
        assert part in line, line


@pytest.mark.parametrize("flag,parts", [
    ("--use_tpu=true", ("--use_tpu needs TPUEstimator", "TensorFlow 2.15")),
    ("--engine=estimator", ("--engine=estimator needs TensorFlow 2.15",)),
    ("--distribution_strategy=mirrored", ("--distribution_strategy=mirrored runs on the Estimator engine only",
                                          "TensorFlow 2.15")),
])
def test_estimator_only_settings_say_which_stack_runs_them(classifier_args, flag, parts):
    assert_one_error_line(run_script("run_classifier", classifier_args + [flag]), *parts)


def test_hub_programs_say_they_need_tensorflow_2_15(classifier_args, tmp_path):
    hub_args = [arg for arg in classifier_args if not arg.startswith(("--vocab_file", "--bert_config_file",
                                                                      "--init_checkpoint"))]
    assert_one_error_line(run_script("run_classifier_with_tfhub", hub_args + [f"--bert_hub_module_handle={tmp_path}"]),
                          "TF Hub modules (hub.Module) need TensorFlow 2.15", "--stack tf2.15")
    model_args = [arg for arg in classifier_args if arg.startswith(("--vocab_file", "--bert_config_file",
                                                                    "--init_checkpoint"))]
    assert_one_error_line(run_script("export_hub_module", model_args + [f"--output_dir={tmp_path / 'module'}"]),
                          "TF Hub modules (hub.Module) need TensorFlow 2.15")
