"""The Estimator engine (see bert.runtime.engine, which chooses it): TensorFlow 2.15 and earlier only.

TPUEstimator is used everywhere: with `use_tpu=False` it runs on CPU and GPU unchanged. The one exception is opt-in
data-parallel training (`performance.distribution_strategy`), which TPUEstimator cannot do: it gets a plain
Estimator driving the same model_fn.
"""

from typing import Callable, Dict, Optional

import tensorflow.compat.v1 as tf

from bert.common.errors import UserError
from bert.runtime import performance
from bert.runtime.options import RunSettings
from bert.runtime.specs import ModeKeys, estimator_available

if not estimator_available():
    raise ImportError(f"bert.runtime.estimator needs tf.estimator, which TensorFlow {tf.__version__} does not have "
                      "(it was removed in 2.16): use bert.runtime.engine.make_estimator, which runs the session "
                      "engine there")

tpu_estimator = tf.estimator.tpu


def make_run_config(settings: RunSettings) -> tpu_estimator.RunConfig:
    """The TPU RunConfig of the original (PER_HOST_V2 input, one loop = `iterations_per_loop` steps)."""
    cluster = _tpu_cluster(settings) if settings.use_tpu and settings.tpu_name else None
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


def _tpu_cluster(settings: RunSettings) -> tf.distribute.cluster_resolver.TPUClusterResolver:
    """The Cloud TPU named by --tpu_name; one that cannot be found or reached is the user's to fix, whatever the
    network or Google API library raised (they raise many types)."""
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(
            settings.tpu_name, zone=settings.tpu_zone, project=settings.gcp_project)
    except Exception as error:  # noqa: BLE001 - see the docstring
        raise UserError(f"--tpu_name={settings.tpu_name}: cannot find or reach this Cloud TPU "
                        f"({type(error).__name__}: {error}); check --tpu_name, --tpu_zone and --gcp_project, and that "
                        "this VM can reach the Cloud TPU API") from None


def _shared_run_config_arguments(settings: RunSettings) -> dict:
    """The RunConfig arguments of both kinds of Estimator: where and how often to checkpoint, seed, session."""
    return dict(model_dir=settings.output_dir, save_checkpoints_steps=settings.save_checkpoints_steps,
                keep_checkpoint_max=settings.keep_checkpoint_max, tf_random_seed=settings.seed,
                session_config=performance.session_config(settings.performance))


def make_tpu_estimator(model_fn: Callable, settings: RunSettings, batch_sizes: Dict[str, Optional[int]],
                       params: Optional[dict] = None) -> tf.estimator.Estimator:
    """A TPUEstimator for `model_fn` (already given its run's settings by bert.runtime.engine), or with a
    distribution strategy a DistributedEstimator; `batch_sizes` maps each mode to its batch (training: micro-batch)."""
    if settings.performance.is_distributed:
        strategy = performance.make_distribution_strategy(settings.performance)
        performance.check_batch_divides(batch_sizes[ModeKeys.TRAIN], strategy.num_replicas_in_sync,
                                        "replicas (distribution_strategy)")
        return DistributedEstimator(model_fn, make_distributed_run_config(settings, strategy), batch_sizes, params)
    return tpu_estimator.TPUEstimator(
        use_tpu=settings.use_tpu,
        model_fn=model_fn,
        config=make_run_config(settings),
        params=params,
        train_batch_size=batch_sizes[ModeKeys.TRAIN],
        eval_batch_size=batch_sizes[ModeKeys.EVAL],
        predict_batch_size=batch_sizes[ModeKeys.PREDICT],
        export_to_tpu=False)  # SavedModels (bert.runtime.export) are for CPU/GPU serving


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
