"""Building the Estimator that runs a task's model_fn.

TPUEstimator is used everywhere: with `use_tpu=False` it runs on CPU and GPU unchanged. The one exception is opt-in
data-parallel training (`performance.distribution_strategy`), which TPUEstimator cannot do: it gets a plain
Estimator driving the same model_fn.
"""

from typing import Callable, Dict, Optional

import tensorflow.compat.v1 as tf

from bert.common.errors import UserError
from bert.runtime import performance
from bert.runtime.options import RunSettings
from bert.runtime.outputs import make_output_dir
from bert.runtime.performance import PerformanceSettings
from bert.runtime.progress import PredictionProgressHook, ProgressSettings
from bert.runtime.specs import RUN_PARAMS, RunParams

tpu_estimator = tf.estimator.tpu
ModeKeys = tf.estimator.ModeKeys


def make_run_config(settings: RunSettings) -> tpu_estimator.RunConfig:
    """The TPU RunConfig of the original (PER_HOST_V2 input, one loop = `iterations_per_loop` steps)."""
    cluster = None
    if settings.use_tpu and settings.tpu_name:
        cluster = tf.distribute.cluster_resolver.TPUClusterResolver(
            settings.tpu_name, zone=settings.tpu_zone, project=settings.gcp_project)
    tpu_config = tpu_estimator.TPUConfig(
        tpu_job_name=settings.tpu_job_name,
        iterations_per_loop=settings.iterations_per_loop,
        num_shards=settings.num_tpu_cores,
        per_host_input_for_training=tpu_estimator.InputPipelineConfig.PER_HOST_V2)
    # Off CPU/GPU the TrainingProgressHook reports; TPUEstimator's own step/loss lines stay on TPU, where hooks
    # only see loop boundaries (its step-rate line would otherwise come once per step on CPU).
    log_step_count_steps = 100 if settings.use_tpu else None
    return tpu_estimator.RunConfig(cluster=cluster, master=settings.master, tpu_config=tpu_config,
                                   log_step_count_steps=log_step_count_steps,
                                   **_shared_run_config_arguments(settings))


def _shared_run_config_arguments(settings: RunSettings) -> dict:
    """The RunConfig arguments of both kinds of Estimator: where and how often to checkpoint, seed, session."""
    return dict(model_dir=settings.output_dir, save_checkpoints_steps=settings.save_checkpoints_steps,
                keep_checkpoint_max=settings.keep_checkpoint_max, tf_random_seed=settings.seed,
                session_config=performance.session_config(settings.performance))


def make_estimator(model_fn: Callable, settings: RunSettings, train_batch_size: Optional[int] = None,
                   eval_batch_size: Optional[int] = None, predict_batch_size: Optional[int] = None,
                   params: Optional[dict] = None) -> tf.estimator.Estimator:
    """A TPUEstimator for `model_fn`; batch sizes reach the input_fn as `params["batch_size"]`.

    `train_batch_size` is the batch of one optimizer update. With `settings.performance.num_accumulation_steps` N
    the input_fn is asked for micro-batches of train_batch_size / N; with a distribution strategy each replica gets
    an equal share of that (and the Estimator is a plain one, see `DistributedEstimator`).
    """
    settings.performance.validate(settings.use_tpu)
    make_output_dir(settings.output_dir)
    micro_batch_size = _micro_batch_size(train_batch_size, settings.performance.num_accumulation_steps)
    reports_progress = not (settings.use_tpu or settings.performance.is_distributed)
    progress = ProgressSettings(settings.log_every_steps, train_batch_size, settings.output_dir)
    model_fn = _with_run_params(model_fn, settings.performance, progress if reports_progress else None)
    if settings.performance.is_distributed:
        strategy = performance.make_distribution_strategy(settings.performance)
        _check_divides(micro_batch_size, strategy.num_replicas_in_sync, "replicas (distribution_strategy)")
        batch_sizes = {ModeKeys.TRAIN: micro_batch_size, ModeKeys.EVAL: eval_batch_size,
                       ModeKeys.PREDICT: predict_batch_size}
        return DistributedEstimator(model_fn, make_distributed_run_config(settings, strategy), batch_sizes, params)
    return tpu_estimator.TPUEstimator(
        use_tpu=settings.use_tpu,
        model_fn=model_fn,
        config=make_run_config(settings),
        params=params,
        train_batch_size=micro_batch_size,
        eval_batch_size=eval_batch_size,
        predict_batch_size=predict_batch_size,
        export_to_tpu=False)  # SavedModels (bert.runtime.export) are for CPU/GPU serving


def _micro_batch_size(train_batch_size: Optional[int], num_accumulation_steps: int) -> Optional[int]:
    if train_batch_size is None or num_accumulation_steps == 1:
        return train_batch_size
    _check_divides(train_batch_size, num_accumulation_steps, "micro-batches (num_accumulation_steps)")
    return train_batch_size // num_accumulation_steps


def _check_divides(batch_size: Optional[int], parts: int, what: str) -> None:
    if batch_size is not None and batch_size % parts:
        raise UserError(f"a training batch of {batch_size} examples cannot be split evenly into {parts} {what}: "
                        f"choose a train_batch_size that is a multiple of {parts}")


def _with_run_params(model_fn: Callable, settings: PerformanceSettings,
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


def make_distributed_run_config(settings: RunSettings, strategy: tf.distribute.Strategy) -> tf.estimator.RunConfig:
    """An Estimator RunConfig training with `strategy`; evaluation and prediction stay on one device."""
    return tf.estimator.RunConfig(train_distribute=strategy, **_shared_run_config_arguments(settings))


# RunConfig's mode for a TF_CONFIG cluster of workers training with a multi-worker strategy.
_INDEPENDENT_WORKERS = "independent_worker"


class DistributedEstimator(tf.estimator.Estimator):
    """A plain Estimator for tf.distribute training that runs TPUEstimator-style model_fns and input_fns.

    TPUEstimator refuses `train_distribute`. This one converts the model_fn's TPUEstimatorSpec with
    `as_estimator_spec()` and, as TPUEstimator does, passes each mode's batch size as `params["batch_size"]`: to
    the model_fn as given, to each replica's input_fn divided by the number of replicas in sync (with several
    workers, each reads its own shard of the batches).
    """

    def __init__(self, model_fn: Callable, config: tf.estimator.RunConfig, batch_sizes: Dict[str, Optional[int]],
                 params: Optional[dict] = None):
        self._batch_sizes = dict(batch_sizes)

        def estimator_model_fn(features, labels, mode, params):
            spec = model_fn(features, labels, mode, dict(params, batch_size=self._batch_sizes[mode]))
            return spec.as_estimator_spec() if isinstance(spec, tpu_estimator.TPUEstimatorSpec) else spec

        super().__init__(model_fn=estimator_model_fn, config=config, params=dict(params or {}))

    def _call_input_fn(self, input_fn, mode, input_context=None):
        batch_size = self._batch_sizes[mode]
        if batch_size is None:
            raise ValueError(f"make_estimator was given no batch size for mode {mode}")
        if input_context is None:
            return input_fn(dict(self.params, batch_size=batch_size))
        dataset = input_fn(dict(self.params, batch_size=input_context.get_per_replica_batch_size(batch_size)))
        if input_context.num_input_pipelines > 1:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        return dataset

    def train(self, input_fn, hooks=None, steps=None, max_steps=None, saving_listeners=None):
        """Estimator.train, which in a multi-worker cluster (TF_CONFIG) goes through train_and_evaluate: Estimator
        only trains that way there. Each worker runs this same call; the chief writes the checkpoints."""
        if getattr(self.config, "_distribute_coordinator_mode", None) != _INDEPENDENT_WORKERS:
            return super().train(input_fn, hooks=hooks, steps=steps, max_steps=max_steps,
                                 saving_listeners=saving_listeners)
        if steps is not None or saving_listeners:
            raise ValueError("multi-worker training takes max_steps (not steps) and no saving_listeners")
        # Evaluation would only run on an 'evaluator' task; a cluster of workers has none.
        tf.estimator.train_and_evaluate(self, tf.estimator.TrainSpec(input_fn, max_steps=max_steps, hooks=hooks),
                                        tf.estimator.EvalSpec(input_fn, steps=1))
        return self

    def _assert_members_are_not_overridden(self):
        """Estimator forbids overriding its members; like TPUEstimator, this class replaces `_call_input_fn` (and
        `train`, for multi-worker clusters)."""
