"""What every task's model_fn shares: the modes and the spec it returns in each, the run's settings it is handed,
warm start from init_checkpoint, the training spec (the original's optimizer) and the step count of a run.

A model_fn written here runs under either engine (bert.runtime.engine): where TensorFlow still has the Estimator
(2.15) `model_spec` is the original's TPUEstimatorSpec, so the original's own TPUEstimator code keeps working;
without it (2.16 and later) a ModelSpec with the same fields.
"""

import dataclasses
import functools
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence

import tensorflow.compat.v1 as tf

from bert import modeling, optimization
from bert.common.errors import UserError
from bert.runtime.performance import PerformanceSettings
from bert.runtime.progress import ProgressSettings, TrainingProgressHook



class ModeKeys:
    """The three modes of a model_fn, the same strings as tf.estimator.ModeKeys (which compare equal to these)."""

    TRAIN = "train"
    EVAL = "eval"
    PREDICT = "infer"


@functools.lru_cache(maxsize=None)
def estimator_available() -> bool:
    """Whether this TensorFlow has tf.estimator and TPUEstimator (2.15 and earlier; removed in 2.16)."""
    try:
        return tf.estimator.tpu.TPUEstimatorSpec is not None
    except (AttributeError, ImportError):
        return False


class ModelSpec(NamedTuple):
    """What a model_fn returns where there is no Estimator: TPUEstimatorSpec's fields, read by the session engine."""

    mode: str
    predictions: Any = None
    loss: Optional[tf.Tensor] = None
    train_op: Optional[tf.Operation] = None
    eval_metrics: Optional[tuple] = None  # (metric_fn, tensors): metric_fn(*tensors) gives {name: (value, update)}
    export_outputs: Optional[dict] = None
    scaffold_fn: Optional[Callable] = None
    host_call: Optional[tuple] = None
    training_hooks: Optional[Sequence] = None
    evaluation_hooks: Optional[Sequence] = None
    prediction_hooks: Optional[Sequence] = None


def model_spec(mode: str, **fields):
    """The spec a model_fn returns: TPUEstimatorSpec(mode, **fields) where the Estimator exists, else ModelSpec."""
    if estimator_available():
        return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, **fields)
    return ModelSpec(mode=mode, **fields)


# The key of `params` under which make_estimator hands a task's model_fn its run's settings (a RunParams).
RUN_PARAMS = "bert_run"


@dataclasses.dataclass
class RunParams:
    """What a task's model_fn needs of its run beyond the original's arguments: the opt-in speed and scale
    settings and, off TPU, how to report training progress."""

    performance: PerformanceSettings
    progress: Optional[ProgressSettings] = None


def run_params(params: Optional[dict]) -> RunParams:
    """The RunParams make_estimator put into a model_fn's `params`; the original's behaviour without them (a
    model_fn_builder's model_fn in an Estimator of the caller's)."""
    return (params or {}).get(RUN_PARAMS) or RunParams(PerformanceSettings())


def init_from_checkpoint(init_checkpoint: Optional[str], use_tpu: bool,
                         tvars: Optional[Sequence[tf.Variable]] = None) -> Optional[Callable]:
    """Initialises the variables found in `init_checkpoint` and logs every trainable variable.

    Returns the `scaffold_fn` TPUEstimatorSpec wants: on TPU the restore must happen inside it; elsewhere it
    happens now and None is returned. Variables restored are logged with `*INIT_FROM_CKPT*`, as the original did.
    """
    tvars = list(tf.trainable_variables() if tvars is None else tvars)
    restored = {}
    scaffold_fn = None
    if init_checkpoint:
        assignment_map, restored = modeling.get_assignment_map_from_checkpoint(tvars, init_checkpoint)
        if use_tpu:
            def tpu_scaffold():
                tf.train.init_from_checkpoint(init_checkpoint, assignment_map)
                return tf.train.Scaffold()

            scaffold_fn = tpu_scaffold
        else:
            tf.train.init_from_checkpoint(init_checkpoint, assignment_map)
    log_trainable_variables(tvars, restored)
    return scaffold_fn


def train_spec(loss: tf.Tensor, learning_rate: float, num_train_steps: int, num_warmup_steps: Optional[int],
               use_tpu: bool, scaffold_fn: Optional[Callable],
               params: Optional[dict] = None):
    """The TRAIN-mode spec every task shares: the original's optimizer (warmup, decay, clipping) on `loss`, with
    the run's accumulation, loss scaling and optimizer (`run_params(params)`), and progress lines and summaries
    (TrainingProgressHook) when built by make_estimator off TPU."""
    run = run_params(params)
    train_op = optimization.create_optimizer(
        loss, learning_rate, num_train_steps, num_warmup_steps, use_tpu,
        num_accumulation_steps=run.performance.num_accumulation_steps,
        loss_scaling=run.performance.uses_loss_scaling, optimizer=run.performance.optimizer)
    hooks = []
    if run.progress is not None:
        global_step = tf.train.get_or_create_global_step()
        current_learning_rate = optimization.learning_rate_schedule(global_step, learning_rate, num_train_steps,
                                                                    num_warmup_steps)
        hooks.append(TrainingProgressHook(loss, current_learning_rate, num_train_steps, run.progress))
    return model_spec(ModeKeys.TRAIN, loss=loss, train_op=train_op, scaffold_fn=scaffold_fn, training_hooks=hooks)


def log_trainable_variables(tvars: Sequence[tf.Variable], restored: Dict[str, int]) -> None:
    """One INFO line of counts; the original's per-variable list is at DEBUG (absl --verbosity=1)."""
    tf.logging.info("%d trainable variables, %d of them initialised from init_checkpoint", len(tvars),
                    sum(1 for var in tvars if var.name in restored))
    tf.logging.debug("**** Trainable Variables ****")
    for var in tvars:
        note = ", *INIT_FROM_CKPT*" if var.name in restored else ""
        tf.logging.debug("  name = %s, shape = %s%s", var.name, var.shape, note)


def log_features(features: Dict[str, tf.Tensor]) -> None:
    """The input features and shapes, at DEBUG (absl --verbosity=1)."""
    tf.logging.debug("*** Features ***")
    for name in sorted(features):
        tf.logging.debug("  name = %s, shape = %s", name, features[name].shape)


def steps_for(num_examples: int, batch_size: int, num_epochs: float) -> int:
    """Training steps for `num_epochs` passes (the original's int(n / batch * epochs))."""
    return int(num_examples / batch_size * num_epochs)


def training_steps(num_examples: int, batch_size: int, num_epochs: float, source: str) -> int:
    """`steps_for`, refusing a run that would train nothing; `source` names where the examples came from."""
    if num_examples == 0:
        raise UserError(f"do_train: {source} has no training examples")
    steps = steps_for(num_examples, batch_size, num_epochs)
    if steps <= 0:
        raise UserError(f"do_train: {num_examples} examples at train_batch_size={batch_size} for "
                         f"num_train_epochs={num_epochs} give 0 training steps; nothing to train")
    return steps
