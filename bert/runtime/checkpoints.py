"""Checkpoints a run reads: an init_checkpoint given as a prefix or a folder, the newest one in output_dir, and
the checks that a run has the weights it needs."""

import os
from typing import Optional

import tensorflow.compat.v1 as tf

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
