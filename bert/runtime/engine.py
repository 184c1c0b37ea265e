"""The one place that chooses what runs a task's model_fn and input_fns.

Two engines, one interface (`train`, `evaluate`, `predict`, `export_saved_model`, `model_dir`, as tf.estimator's):
- `estimator`: TPUEstimator (a plain Estimator for data-parallel training), the original's engine, for as long as
  TensorFlow has it (2.15 and earlier). It is the only one that runs on Cloud TPU.
- `session`: bert.runtime.session_engine, built on TensorFlow's session machinery, which TensorFlow 2.16 and later
  still have although they dropped tf.estimator. It writes the files the Estimator writes, so either engine can
  continue, evaluate or export the other's run.
`auto` (the default) takes the Estimator where it exists. Task code never knows which engine runs it.
"""

from typing import Callable, Optional

import tensorflow.compat.v1 as tf

from bert.common.errors import UserError
from bert.runtime import performance
from bert.runtime.options import RunSettings
from bert.runtime.outputs import make_output_dir
from bert.runtime.guard import GuardedEngine
from bert.runtime.progress import PredictionProgressHook, ProgressSettings
from bert.runtime.specs import RUN_PARAMS, ModeKeys, RunParams, estimator_available

ENGINES = ("auto", "estimator", "session")
_ESTIMATOR_NEEDED = "TensorFlow 2.15 (Python 3.9-3.11), the last release with tf.estimator"


def resolve_engine(engine: str) -> str:
    """`estimator` or `session` for the setting `engine` (one of ENGINES) on this TensorFlow."""
    if engine not in ENGINES:
        raise UserError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "auto":
        return "estimator" if estimator_available() else "session"
    if engine == "estimator" and not estimator_available():
        raise UserError(f"--engine=estimator needs {_ESTIMATOR_NEEDED}; this is TensorFlow {tf.__version__}: use "
                        "--engine=auto (or session)")
    return engine


def _check_session_engine_supports(settings: RunSettings) -> None:
    where = ("TensorFlow " + tf.__version__ + " has no tf.estimator" if not estimator_available()
             else "--engine=session was chosen")
    if settings.use_tpu:
        raise UserError(f"--use_tpu needs TPUEstimator, but {where}: Cloud TPU runs need {_ESTIMATOR_NEEDED}")
    if settings.performance.is_distributed:
        raise UserError(f"--distribution_strategy={settings.performance.distribution_strategy} runs on the Estimator "
                        f"engine only, but {where}: use {_ESTIMATOR_NEEDED}, or train on one device")


def make_estimator(model_fn: Callable, settings: RunSettings, train_batch_size: Optional[int] = None,
                   eval_batch_size: Optional[int] = None, predict_batch_size: Optional[int] = None,
                   params: Optional[dict] = None):
    """The engine `settings.engine` names, running `model_fn`; batch sizes reach the input_fns and model_fn as
    `params["batch_size"]`, as TPUEstimator gives them.

    `train_batch_size` is the batch of one optimizer update. With `settings.performance.num_accumulation_steps` N
    the input_fn is asked for micro-batches of train_batch_size / N; with a distribution strategy each replica gets
    an equal share of that. Off TPU and without distribution the model_fn also reports progress (RunParams).
    Training stops cleanly on SIGTERM/SIGINT and reports divergence in one line (bert.runtime.guard).
    """
    settings.performance.validate(settings.use_tpu)
    engine = resolve_engine(settings.engine)
    if engine == "session":
        _check_session_engine_supports(settings)
    make_output_dir(settings.output_dir)
    micro_batch_size = performance.micro_batch_size(train_batch_size, settings.performance.num_accumulation_steps)
    reports_progress = not (settings.use_tpu or settings.performance.is_distributed)
    progress = ProgressSettings(settings.log_every_steps, train_batch_size, settings.output_dir)
    model_fn = _with_run_params(model_fn, settings.performance, progress if reports_progress else None)
    batch_sizes = {ModeKeys.TRAIN: micro_batch_size, ModeKeys.EVAL: eval_batch_size,
                   ModeKeys.PREDICT: predict_batch_size}
    if engine == "session":
        from bert.runtime.session_engine import SessionEstimator

        inner = SessionEstimator(model_fn, settings, batch_sizes, params)
    else:
        from bert.runtime.estimator import make_tpu_estimator

        inner = make_tpu_estimator(model_fn, settings, batch_sizes, params)
    return GuardedEngine(inner, settings.output_dir, settings.performance.precision)


def _with_run_params(model_fn: Callable, settings: performance.PerformanceSettings,
                     progress: Optional[ProgressSettings]) -> Callable:
    """`model_fn` given `settings` (and, when `progress` is given, progress reporting) in its params
    (`run_params`): train_spec adds a TrainingProgressHook, prediction specs get a PredictionProgressHook."""

    def model_fn_with_run_params(features, labels, mode, params):
        spec = model_fn(features, labels, mode, dict(params or {}, **{RUN_PARAMS: RunParams(settings, progress)}))
        if progress is not None and mode == ModeKeys.PREDICT and spec.predictions is not None:
            hooks = tuple(spec.prediction_hooks or ()) + (PredictionProgressHook(spec.predictions),)
            spec = spec._replace(prediction_hooks=hooks)
        return spec

    return model_fn_with_run_params
