"""README's original-vs-ours benchmark rows: the benchmark measuring the real original files, unchanged.

tests/benchmarks/test_benchmark.py checks the loader with stand-in files written by the test; this one runs the
command a user runs for the "original" rows, on the original's files (tests/live_original.py: $ORIGINAL_BERT_DIR, by
default the shared folder's original_bert/).
"""

import json
import os
import subprocess
import sys

import pytest

import throughput
from helpers import REPO_ROOT
from live_original import original_bert_dir


@pytest.mark.needs_tf215  # the original's code (TPUEstimator, tf.layers) or tf.estimator
def test_the_original_files_are_loaded_unchanged():
    original = throughput.load_original(original_bert_dir())
    for module, name in ((original.modeling, "modeling.py"), (original.optimization, "optimization.py")):
        assert os.path.samefile(module.__file__, os.path.join(original_bert_dir(), name))
    assert original.modeling.BertModel.__module__ == original.modeling.__name__  # their class, not ours


@pytest.mark.slow
@pytest.mark.parametrize("code", ["ours", pytest.param("original", marks=pytest.mark.needs_tf215)])
def test_benchmark_script_prints_the_row_of_each_code(tmp_path, code):
    output_json = tmp_path / "results.jsonl"
    command = [sys.executable, os.path.join(REPO_ROOT, "benchmarks", "benchmark.py"), "--preset=tiny",
               "--max_seq_length=16", "--batch_size=4", "--num_runs=1", "--num_warmup_runs=0", "--matmul_size=128",
               f"--output_json={output_json}"]
    if code == "original":
        command.append(f"--original_bert_dir={original_bert_dir()}")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line for line in completed.stdout.splitlines() if line.startswith(f"| {code} | tiny |")]
    assert len(rows) == 1, completed.stdout
    result = json.loads(output_json.read_text().splitlines()[-1])
    assert result["train_examples_per_second"] > 0
