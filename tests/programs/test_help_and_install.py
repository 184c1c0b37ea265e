"""--helpshort lists every flag a program takes; the installed commands run from outside the checkout."""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from helpers import REPO_ROOT
from program_help import FORMS, PROGRAMS, flags_by_section, flags_listed, help_outputs, program_flags_in_full_help

# Flags that are not in the original program but new here; --helpshort must list them too.
NEW_FLAGS_SAMPLE = {
    "run_classifier": {"seed", "precision", "export_dir"},
    "run_squad": {"num_accumulation_steps", "use_xla"},
    "run_pretraining": {"distribution_strategy"},
    "create_pretraining_data": {"num_workers", "chars_per_shard"},
    "extract_features": {"output_format", "npz_dtype"},
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("program", PROGRAMS)
def test_helpshort_lists_every_flag_the_program_takes(program, form):
    outputs = help_outputs()
    short = flags_listed(outputs[f"{program} {form} --helpshort"])
    defined = program_flags_in_full_help(outputs[f"{program} {form} --helpfull"])
    assert len(defined) >= 13
    assert short == defined
    assert NEW_FLAGS_SAMPLE[program] <= short


def test_helpshort_of_run_classifier_shows_the_shared_groups():
    # The example: before, only --data_dir and --task_name were listed.
    short = flags_listed(help_outputs()["run_classifier script --helpshort"])
    assert {"data_dir", "task_name", "bert_config_file", "vocab_file", "do_train", "learning_rate",
            "num_train_epochs", "use_tpu", "tpu_name", "save_checkpoints_steps"} <= short
    assert "helpfull" not in short and "logtostderr" not in short  # absl's own flags stay in --helpfull


@pytest.mark.parametrize("form", FORMS)
def test_helpshort_groups_the_flags_under_headings(form):
    sections = flags_by_section(help_outputs()[f"run_classifier {form} --helpshort"])
    assert set(sections) == {"run_classifier.py", "Pre-trained model", "Output",
                             "Training, evaluation and prediction", "Run and checkpoints", "TPU",
                             "Speed and scale [new, opt-in]", "Export [new]"}
    assert sections["run_classifier.py"] == {"data_dir", "task_name"}
    assert {"bert_config_file", "vocab_file", "do_lower_case", "preserve_unused_tokens",
            "init_checkpoint"} == sections["Pre-trained model"]
    assert {"precision", "use_xla", "dynamic_padding", "group_by_length", "gradient_checkpointing",
            "optimizer", "fast_kernels"} <= sections["Speed and scale [new, opt-in]"]
    assert {"do_train", "learning_rate", "max_seq_length"} <= sections["Training, evaluation and prediction"]
    # run_pretraining defines its own max_seq_length: listed under the program, not the fine-tuning group
    pretraining = flags_by_section(help_outputs()[f"run_pretraining {form} --helpshort"])
    assert {"max_seq_length", "input_file", "num_train_steps"} <= pretraining["run_pretraining.py"]


def test_helpfull_still_groups_by_defining_module():
    full = help_outputs()["run_classifier script --helpfull"]
    assert "\nbert.runtime.flags:\n" in full and "\nbert.run_classifier:\n" in full
    assert "\nabsl.logging:\n" in full


# ----------------------------------------------------------------------------------------------------------------
# The installed commands, in a fresh virtualenv
# ----------------------------------------------------------------------------------------------------------------


def _installable_copy(destination: str) -> str:
    """The files setup.py packages, copied so that building leaves no build/ or egg-info in the checkout."""
    os.makedirs(destination)
    for name in ("setup.py", "README.md", "LICENSE"):
        shutil.copy(os.path.join(REPO_ROOT, name), destination)
    shutil.copytree(os.path.join(REPO_ROOT, "bert"), os.path.join(destination, "bert"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def _fresh_venv(path: str) -> str:
    """A virtualenv without pip; a .pth line makes this interpreter's packages (TF, pip, setuptools) visible
    behind its own site-packages, so nothing is downloaded and the project's own install is what gets imported."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
    python = os.path.join(path, "bin", "python")
    site_packages = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(site_packages, "_outer_packages.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _clean_env() -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return env


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory):
    pytest.importorskip("setuptools", reason="building without isolation (no downloads) needs setuptools installed")
    root = tmp_path_factory.mktemp("install")
    source = _installable_copy(str(root / "src"))
    python = _fresh_venv(str(root / "venv"))
    completed = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                                "-q", source], env=_clean_env(), capture_output=True, text=True, cwd=str(root))
    assert completed.returncode == 0, completed.stderr
    return root / "venv", python


def _installed_commands(python: str, cwd) -> dict:
    listing = subprocess.run(
        [python, "-c", "import importlib.metadata as m; "
                       "print('\\n'.join(f'{e.name}={e.value}' for e in m.distribution('bert-tf').entry_points))"],
        check=True, capture_output=True, text=True, env=_clean_env(), cwd=cwd).stdout
    return dict(line.split("=", 1) for line in listing.split())


def test_install_puts_only_prefixed_commands_on_path(installed_venv, tmp_path):
    venv, python = installed_venv
    commands = _installed_commands(python, tmp_path)
    assert set(PROGRAMS) <= {target.split(":")[-1] for target in commands.values()}  # bert.commands:<program>
    assert all(name.startswith("bert-tf-") for name in commands)
    new_programs = {os.path.basename(p) for p in glob.glob(str(venv / "bin" / "*"))} - {
        "python", "python3", f"python3.{sys.version_info.minor}", "activate", "activate.csh", "activate.fish",
        "Activate.ps1"}
    assert new_programs == set(commands)  # no benchmark.py, evaluate_squad.py, ... under generic names
    imported_from = subprocess.run([python, "-c", "import bert; print(bert.__file__)"], check=True,
                                   capture_output=True, text=True, env=_clean_env(), cwd=tmp_path).stdout
    assert imported_from.startswith(str(venv))


def _help_argument(target: str):
    """(help option, exit status): absl programs exit 1 after --helpshort; evaluate_squad keeps the official
    script's argparse command line, whose --help exits 0."""
    return ("--help", 0) if target.endswith(":evaluate_squad") else ("--helpshort", 1)


@pytest.mark.slow
def test_installed_commands_run_helpshort_outside_the_checkout(installed_venv, tmp_path):
    venv, python = installed_venv
    commands = _installed_commands(python, tmp_path)
    # Started together: each spends seconds importing TensorFlow.
    running = {command: subprocess.Popen([str(venv / "bin" / command), _help_argument(target)[0]],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_clean_env(),
                                         cwd=tmp_path)
               for command, target in sorted(commands.items())}
    programs_seen = set()
    for command, process in running.items():
        stdout, stderr = process.communicate(timeout=300)
        listed = flags_listed(stdout)
        assert process.returncode == _help_argument(commands[command])[1], stderr[-2000:]
        assert "Traceback" not in stderr, stderr[-2000:]
        program = commands[command].split(":")[-1]  # bert.commands:<program>
        if program in NEW_FLAGS_SAMPLE:
            assert NEW_FLAGS_SAMPLE[program] <= listed and len(listed) >= 13, (command, stdout)
            programs_seen.add(program)
        else:
            assert "--" in stdout, (command, stdout)
    assert programs_seen == set(PROGRAMS)


def test_installed_metadata_license_and_extras(installed_venv, tmp_path):
    _, python = installed_venv
    script = ("import importlib.metadata as m; d = m.metadata('bert-tf'); "
              "print(d['License']); print(sorted(d.get_all('Provides-Extra'))); print(d.get_all('Classifier'))")
    license_line, extras, classifiers = subprocess.run(
        [python, "-c", script], check=True, capture_output=True, text=True, env=_clean_env(),
        cwd=tmp_path).stdout.splitlines()
    assert license_line == "Apache-2.0"
    assert extras == "['hub', 'test']"
    assert "License ::" not in classifiers  # setuptools >= 77 warns that license classifiers are deprecated
