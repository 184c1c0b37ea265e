"""scripts/setup_env.sh picks the newest Python a stack supports (TensorFlow 2.15: 3.9-3.11; 2.16-2.21: 3.12-3.13)
or stops before installing anything.

The script runs in a copy of the checkout with a PATH of fake interpreters (small shell scripts that run the real
Python pretending to be another version, or fail like a pyenv shim whose version is not installed).
"""

import os
import shutil
import subprocess
import sys

import pytest

from helpers import REPO_ROOT

TOOLS = ("dirname", "grep")


def _fake_python(folder, name, version):
    """An executable `name` that runs the real interpreter with sys.version_info set to `version` (None: it fails
    to run, as a pyenv shim of an absent version does)."""
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        if version is None:
            f.write(f"#!/bin/sh\necho \"pyenv: {name}: command not found\" >&2\nexit 127\n")
        else:
            f.write(f"#!/bin/sh\n[ \"$1\" = -c ] || exit 2\nexec {sys.executable} -c "
                    f"\"import sys; sys.version_info = {version!r}; exec(sys.argv[1])\" \"$2\"\n")
    os.chmod(path, 0o755)
    return path


@pytest.fixture
def checkout(tmp_path):
    """A folder with scripts/setup_env.sh and setup.py, and a bin/ holding only the tools the script needs."""
    os.makedirs(tmp_path / "repo" / "scripts")
    shutil.copy(os.path.join(REPO_ROOT, "scripts", "setup_env.sh"), tmp_path / "repo" / "scripts")
    shutil.copy(os.path.join(REPO_ROOT, "setup.py"), tmp_path / "repo")
    bin_dir = tmp_path / "bin"
    os.makedirs(bin_dir)
    for tool in TOOLS:
        os.symlink(shutil.which(tool), bin_dir / tool)
    return tmp_path


def _run(checkout, *args, python=None):
    env = {"PATH": str(checkout / "bin"), "HOME": str(checkout)}
    if python:
        env["PYTHON"] = python
    return subprocess.run([shutil.which("bash"), str(checkout / "repo" / "scripts" / "setup_env.sh"), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def _assert_stopped(completed, checkout, hints=("3.9, 3.10 or 3.11", "uv python install 3.11")):
    assert completed.returncode != 0
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr
    for hint in hints + ("conda", "pyenv"):
        assert hint in lines[0]
    assert not [name for name in os.listdir(checkout / "repo") if name.startswith(".venv")]


def test_stops_when_only_other_stacks_pythons_run(checkout):
    _fake_python(checkout / "bin", "python3", (3, 12, 1))
    _fake_python(checkout / "bin", "python3.10", None)  # a shim that exists but does not run
    _fake_python(checkout / "bin", "python3.13", (3, 13, 0))
    _assert_stopped(_run(checkout, "--stack", "tf2.15"), checkout)
    _assert_stopped(_run(checkout, "--stack=tf2.15", "--print-python"), checkout)


def test_stops_when_no_python_runs_at_all(checkout):
    _fake_python(checkout / "bin", "python3.12", None)
    _fake_python(checkout / "bin", "python3", (3, 8, 10))
    _assert_stopped(_run(checkout), checkout, hints=("Python 3.9 to 3.13", "uv python install 3.12"))
    _assert_stopped(_run(checkout, "--stack", "tf2.21"), checkout, hints=("Python 3.12 or 3.13",))


def test_stops_when_PYTHON_does_not_suit_the_stack(checkout):
    _fake_python(checkout / "bin", "python3.11", (3, 11, 4))
    completed = _run(checkout, "--stack", "tf2.15", python=_fake_python(checkout / "bin", "py312", (3, 12, 0)))
    _assert_stopped(completed, checkout)
    assert "(Python 3.12)" in completed.stderr
    _assert_stopped(_run(checkout, "--stack", "tf2.15", python=str(checkout / "bin" / "absent-python")), checkout)


def test_picks_the_newest_suitable_candidate_of_the_stack(checkout):
    _fake_python(checkout / "bin", "python3", (3, 11, 2))
    _fake_python(checkout / "bin", "python3.11", None)
    python310 = _fake_python(checkout / "bin", "python3.10", (3, 10, 9))
    completed = _run(checkout, "--stack", "tf2.15", "--print-python")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == python310
    os.remove(python310)
    _fake_python(checkout / "bin", "python3.9", (3, 8, 10))  # too old
    assert _run(checkout, "--stack", "tf2.15", "--print-python").stdout.strip() == str(checkout / "bin" / "python3")


def test_without_a_stack_the_newest_python_chooses_it(checkout):
    python311 = _fake_python(checkout / "bin", "python3.11", (3, 11, 4))
    assert _run(checkout, "--print-python").stdout.strip() == python311
    assert _run(checkout, "--print-venv").stdout.strip() == ".venv-tf2.15"
    python313 = _fake_python(checkout / "bin", "python3.13", (3, 13, 0))
    assert _run(checkout, "--print-python").stdout.strip() == python313
    assert _run(checkout, "--print-venv").stdout.strip() == ".venv-tf2.21"
    assert _run(checkout, "--stack", "tf2.15", "--print-venv").stdout.strip() == ".venv-tf2.15"


def test_an_unknown_stack_is_refused(checkout):
    completed = _run(checkout, "--stack", "tf1")
    assert completed.returncode == 2 and completed.stderr.strip() == "error: --stack must be tf2.15 or tf2.21, got 'tf1'"


def test_PYTHON_wins_when_it_suits(checkout):
    _fake_python(checkout / "bin", "python3.11", (3, 11, 4))
    chosen = _fake_python(checkout / "bin", "py39", (3, 9, 18))
    completed = _run(checkout, "--stack", "tf2.15", "--print-python", python=chosen)
    assert completed.returncode == 0 and completed.stdout.strip() == chosen


@pytest.mark.parametrize("extras_require,expected", [
    ('{"test": ["pytest"]}', "test"),
    ('{"test": ["pytest"], "hub": ["tensorflow-hub"]}', "test,hub"),
])
def test_hub_extra_installed_when_setup_py_defines_it(checkout, extras_require, expected):
    (checkout / "repo" / "setup.py").write_text(f"setup(name='x', extras_require={extras_require})\n")
    assert _run(checkout, "--print-extras").stdout.strip() == expected
