"""What the tests share: where the checkout and the shared data are, what a test needs, a tiny BERT to make.

Plain functions and constants (tests import them from here); the fixtures are in conftest.py.
"""

import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.abspath(os.environ.get("BERT_SHARED_DIR", os.path.join(REPO_ROOT, "..", "shared")))
# CI has everything the tests need (.ci/run installs it and lays ../shared beside the clone): there, a missing piece
# is a failure naming it, not a skip that would let a claim go unchecked.
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(present: bool, what: str) -> None:
    """Fails the calling test in CI, and skips it elsewhere, when something it needs is not `present`.

    `what` names the missing path or package and how to provide it.
    """
    if present:
        return
    if IN_CI:
        pytest.fail(f"CI=true, and this test needs {what}", pytrace=False)
    pytest.skip(f"needs {what}", allow_module_level=True)


def onednn_runs_bfloat16() -> bool:
    """Whether oneDNN's bfloat16 rewrite (--precision=bf16) changes anything here: it needs a CPU with bfloat16
    instructions and oneDNN on.

    TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's own kernels) turns oneDNN off; ONEDNN_MAX_CPU_ISA below
    AVX512_CORE_BF16 (e.g. AVX512_CORE or AVX2, which makes oneDNN choose the kernels of another CPU family) keeps
    it from using the instructions.
    """
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip() in ("0", "false", "False"):
        return False
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if isa_cap != "ALL" and "BF16" not in isa_cap and "AMX" not in isa_cap:
        return False
    from bert.runtime.performance import bfloat16_units

    return bool(bfloat16_units())


def shared_path(*parts: str) -> str:
    """Path of a file in the shared data folder; the calling test needs it (see `require`)."""
    path = os.path.join(SHARED_DIR, *parts)
    require(os.path.exists(path), f"{path} (set BERT_SHARED_DIR to the folder holding data/ and golden/)")
    return path


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


def available_engines() -> tuple:
    """The engines (bert.runtime.engine) this TensorFlow runs: both on 2.15, the session engine only on 2.16+."""
    from bert.runtime.specs import estimator_available

    return ("estimator", "session") if estimator_available() else ("session",)


needs_bfloat16_kernels = pytest.mark.skipif(
    not onednn_runs_bfloat16(), reason="oneDNN runs no bfloat16 kernels here (no bfloat16 instructions, or oneDNN off)")
