"""Checkpoints a run reads: an init_checkpoint given as a prefix or a folder, the newest one in output_dir, and
the checks that a run has the weights it needs."""

import os
from typing import Optional

import tensorflow.compat.v1 as tf

from bert import modeling
from bert.common.errors import UserError, UserFileNotFoundError


def latest_checkpoint_note(output_dir: str) -> Optional[str]:
    """A message saying training resumes from the newest checkpoint in `output_dir`, or None when there is none."""
    latest = tf.train.latest_checkpoint(output_dir) if tf.io.gfile.exists(output_dir) else None
    if latest is None:
        return None
    return (f"output_dir {output_dir} already holds checkpoint {latest}: training resumes from it "
            f"(init_checkpoint is ignored); use a new output_dir to start afresh")


def check_weights_for_inference(output_dir: str, init_checkpoint: Optional[str], phases: str) -> None:
    """Evaluating or predicting without training needs trained weights: a checkpoint in `output_dir` or an
    `init_checkpoint` (else the Estimator would silently use random weights)."""
    has_checkpoint = tf.io.gfile.isdir(output_dir) and tf.train.latest_checkpoint(output_dir) is not None
    if not (init_checkpoint or has_checkpoint):
        raise UserError(f"{phases} without do_train needs trained weights, but output_dir {output_dir} holds no "
                        f"checkpoint and --init_checkpoint is not set: pass --init_checkpoint=<dir>/model.ckpt-N "
                        f"of a fine-tuned model, or the output_dir of its training run")


def warn_if_resuming(output_dir: str) -> None:
    """Logs a warning when training will resume from a checkpoint already in `output_dir` (as Estimator does)."""
    note = latest_checkpoint_note(output_dir)
    if note:
        tf.logging.warning(note)


def resolve_checkpoint_path(path: Optional[str]) -> Optional[str]:
    """Accepts a checkpoint prefix (bert_model.ckpt) or a directory holding one; fails clearly when neither exists."""
    if not path:
        return None
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        candidates = sorted(tf.io.gfile.glob(os.path.join(path, "*.index")))
        if len(candidates) == 1:
            return candidates[0][: -len(".index")]
        raise UserFileNotFoundError(f"init_checkpoint: no checkpoint found in directory {path} (expected "
                                    f"NAME.index and NAME.data-* files, e.g. bert_model.ckpt.index)")
    if path.endswith(".index") and tf.io.gfile.exists(path):
        return path[: -len(".index")]
    if not tf.io.gfile.exists(path + ".index"):
        raise UserFileNotFoundError(f"init_checkpoint {path} not found (expected the file {path}.index): give "
                                    f"the checkpoint prefix, e.g. .../bert_model.ckpt or .../model.ckpt-1000")
    return path


def checkpoint_global_step(model_dir: str) -> int:
    """The global step of the newest checkpoint in `model_dir`; 0 when there is none (training starts afresh)."""
    latest = tf.train.latest_checkpoint(model_dir) if tf.io.gfile.exists(model_dir) else None
    if not latest:
        return 0
    return int(tf.train.load_variable(latest, tf.GraphKeys.GLOBAL_STEP))


def check_same_model(output_dir: str, bert_config: modeling.BertConfig, config_source: str) -> None:
    """Fails before anything is written when `output_dir` already holds checkpoints of a model of other sizes
    than `bert_config` (read from `config_source`): TensorFlow would fail later, restoring, with a shape error.
    The message names the first variable whose shape differs and the config values behind it."""
    latest = tf.train.latest_checkpoint(output_dir) if tf.io.gfile.isdir(output_dir) else None
    if latest is None:
        return
    shapes = _variable_shapes(latest)
    config = bert_config
    expected = [
        ("bert/embeddings/word_embeddings", [config.vocab_size, config.hidden_size], ("vocab_size", "hidden_size")),
        ("bert/embeddings/token_type_embeddings", [config.type_vocab_size, config.hidden_size],
         ("type_vocab_size", "hidden_size")),
        ("bert/embeddings/position_embeddings", [config.max_position_embeddings, config.hidden_size],
         ("max_position_embeddings", "hidden_size")),
        ("bert/encoder/layer_0/intermediate/dense/kernel", [config.hidden_size, config.intermediate_size],
         ("hidden_size", "intermediate_size")),
    ]
    advice = "give a new --output_dir, or the bert_config_file of the model in it; nothing in it was changed"
    for name, shape, settings in expected:
        if name in shapes and list(shapes[name]) != shape:
            values = ", ".join(f"{setting}={getattr(config, setting)}" for setting in settings)
            raise UserError(f"output_dir {output_dir} holds checkpoint {latest} of another model: its {name} has "
                            f"shape {list(shapes[name])}, but {config_source} gives {shape} ({values}): {advice}")
    layers = {int(name.split("/")[2][len("layer_"):]) for name in shapes if name.startswith("bert/encoder/layer_")}
    if layers and len(layers) != config.num_hidden_layers:
        raise UserError(f"output_dir {output_dir} holds checkpoint {latest} of another model: it has {len(layers)} "
                        f"encoder layers, but {config_source} gives num_hidden_layers={config.num_hidden_layers}: "
                        f"{advice}")


def _variable_shapes(checkpoint: str) -> dict:
    try:
        return tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
    except tf.errors.OpError as error:
        raise UserError(f"checkpoint {checkpoint} cannot be read ({error.message.splitlines()[0]}): it may be "
                        "truncated or damaged (an interrupted copy or download); copy it again, or remove it and "
                        "its `checkpoint` entry to start from the one before") from None
