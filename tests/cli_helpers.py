"""Running the programs in scripts/ as a user does, and checking how they end."""

import os
import subprocess
import sys
from typing import Sequence

from helpers import REPO_ROOT

SCRIPTS = os.path.join(REPO_ROOT, "scripts")


def run_script(name: str, args: Sequence[str], timeout: float = 600, **env) -> subprocess.CompletedProcess:
    """Runs scripts/<name>.py with `args` in a fresh Python, as from a shell (no TF_CPP_MIN_LOG_LEVEL preset)."""
    environment = dict(os.environ, CUDA_VISIBLE_DEVICES="", **env)
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, f"{name}.py"), *args], capture_output=True,
                          text=True, timeout=timeout, env=environment)


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
