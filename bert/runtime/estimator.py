"""Estimator / TPUEstimator plumbing shared by every task script.

The original pasted the same RunConfig, init-from-checkpoint and variable-logging blocks into each script; here
they live once. TPUEstimator is used everywhere: with `use_tpu=False` it runs on CPU and GPU unchanged. The one
exception is opt-in data-parallel training (`performance.distribution_strategy`), which TPUEstimator cannot do: it
gets a plain Estimator driving the same model_fn.
"""

import dataclasses
import datetime
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import tensorflow.compat.v1 as tf

from bert import modeling, optimization
from bert.common.errors import UserError, UserFileNotFoundError
from bert.runtime import performance, sequence_length
from bert.runtime.performance import PerformanceSettings

tpu_estimator = tf.estimator.tpu
ModeKeys = tf.estimator.ModeKeys


@dataclasses.dataclass
class RunSettings:
    """Where and how an Estimator runs: the original's common flags (TPU, checkpointing) plus opt-in extras."""

    output_dir: str
    use_tpu: bool = False
    tpu_name: Optional[str] = None
    tpu_zone: Optional[str] = None
    gcp_project: Optional[str] = None
    master: Optional[str] = None
    num_tpu_cores: int = 8
    tpu_job_name: Optional[str] = None  # [1.0.4] the TPU worker job's name when not "tpu_worker"
    iterations_per_loop: int = 1000
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    seed: Optional[int] = None
    log_every_steps: int = 0  # [new] training progress line every N steps; 0 = about 20 lines per run
    performance: PerformanceSettings = dataclasses.field(default_factory=PerformanceSettings)

    @classmethod
    def from_flags(cls, flags_values) -> "RunSettings":
        return dataclass_from_flags(cls, flags_values, performance=PerformanceSettings.from_flags(flags_values))


class TaskOptions:
    """What the options dataclass of every task shares: its RunSettings (one for its output_dir when none is given)
    and the LengthSettings of its max_seq_length, dynamic_padding and group_by_length."""

    TOKEN_FEATURES = sequence_length.TOKEN_FEATURES  # the features cut with the tokens; a task may name others

    def __post_init__(self):
        if self.run is None:
            self.run = RunSettings(output_dir=self.output_dir)

    def length_settings(self) -> sequence_length.LengthSettings:
        return sequence_length.LengthSettings.for_options(self, token_features=self.TOKEN_FEATURES)


def dataclass_from_flags(cls, flags_values, **overrides):
    """Builds dataclass `cls` from the absl flags named like its fields; fields without a flag keep defaults."""
    values = {f.name: getattr(flags_values, f.name) for f in dataclasses.fields(cls) if f.name in flags_values}
    values.update(overrides)
    return cls(**values)


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
    progress = _ProgressSettings(settings.log_every_steps, train_batch_size, settings.output_dir)
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


def check_output_dir(output_dir: str) -> None:
    """Fails when `output_dir` names an existing file (TensorFlow would fail later with FailedPreconditionError)."""
    if tf.io.gfile.exists(output_dir) and not tf.io.gfile.isdir(output_dir):
        raise UserError(f"output_dir {output_dir} is a file, not a folder: give a folder (it is created if absent)")


def make_output_dir(output_dir: str) -> None:
    """Creates `output_dir` (and its parents) unless it exists; a file at that path is the user's error."""
    check_output_dir(output_dir)
    try:
        tf.io.gfile.makedirs(output_dir)
    except tf.errors.OpError as error:
        raise UserError(f"cannot create output_dir {output_dir}: {error.message}") from None


@dataclasses.dataclass
class _ProgressSettings:
    every_steps: int
    examples_per_step: Optional[int]
    output_dir: str


# The key of `params` under which make_estimator hands a task's model_fn its run's settings (a RunParams).
RUN_PARAMS = "bert_run"


@dataclasses.dataclass
class RunParams:
    """What a task's model_fn needs of its run beyond the original's arguments: the opt-in speed and scale
    settings and, off TPU, how to report training progress."""

    performance: PerformanceSettings
    progress: Optional[_ProgressSettings] = None


def run_params(params: Optional[dict]) -> RunParams:
    """The RunParams make_estimator put into a model_fn's `params`; the original's behaviour without them (a
    model_fn_builder's model_fn in an Estimator of the caller's)."""
    return (params or {}).get(RUN_PARAMS) or RunParams(PerformanceSettings())


def _with_run_params(model_fn: Callable, settings: PerformanceSettings,
                            progress: Optional[_ProgressSettings]) -> Callable:
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
               params: Optional[dict] = None) -> tpu_estimator.TPUEstimatorSpec:
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
    return tpu_estimator.TPUEstimatorSpec(mode=tf.estimator.ModeKeys.TRAIN, loss=loss, train_op=train_op,
                                          scaffold_fn=scaffold_fn, training_hooks=hooks)


def progress_interval(every_steps: int, total_steps: int) -> int:
    """Steps between progress lines: `every_steps`, or with 0 a twentieth of the run rounded up (at most 20
    lines, plus one for a last partial interval)."""
    return every_steps if every_steps > 0 else max(1, -(-total_steps // 20))


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(seconds))))


class TrainingProgressHook(tf.train.SessionRunHook):
    """Every few steps one line: step/total, mean loss since the previous line, learning rate, examples/s, ETA;
    the mean loss and learning rate also go to output_dir as TensorBoard summaries (train/loss,
    train/learning_rate).

    The loss is fetched on every step (a scalar the step computes anyway); the global step and learning rate are
    read after the step, so a line shows the rate the last update used.
    """

    def __init__(self, loss: tf.Tensor, learning_rate: tf.Tensor, total_steps: int, settings: _ProgressSettings):
        self._loss = loss
        self._learning_rate = learning_rate
        self._total_steps = total_steps
        self._interval = progress_interval(settings.every_steps, total_steps)
        self._examples_per_step = settings.examples_per_step
        self._output_dir = settings.output_dir

    def begin(self) -> None:
        self._global_step = tf.train.get_global_step()

    def after_create_session(self, session, coord) -> None:
        self._start_step = self._last_step = int(session.run(self._global_step))
        self._start_time = self._last_time = time.time()
        self._losses: List[float] = []
        self._last_line: Optional[str] = None

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self._loss)

    def after_run(self, run_context, run_values) -> None:
        self._losses.append(float(run_values.results))
        step = int(run_context.session.run(self._global_step))
        if step - self._last_step >= self._interval or step >= self._total_steps:
            self._report(run_context.session, step)

    def end(self, session) -> None:
        step = int(session.run(self._global_step))
        if self._losses and step > self._last_step:
            self._report(session, step)
        tf.summary.FileWriterCache.get(self._output_dir).flush()

    def _report(self, session, step: int) -> None:
        now = time.time()
        mean_loss = sum(self._losses) / len(self._losses)
        learning_rate = float(session.run(self._learning_rate))
        parts = [f"step {step}/{self._total_steps}", f"loss {mean_loss:.4f}", f"lr {learning_rate:.3g}"]
        interval_seconds = now - self._last_time
        if self._examples_per_step and interval_seconds > 0:
            parts.append(f"{(step - self._last_step) * self._examples_per_step / interval_seconds:.1f} examples/s")
        steps_done = step - self._start_step
        if steps_done > 0:
            remaining = max(0, self._total_steps - step) * (now - self._start_time) / steps_done
            parts.append(f"ETA {_duration(remaining)}")
        tf.logging.info("  ".join(parts))
        summary = tf.Summary(value=[tf.Summary.Value(tag="train/loss", simple_value=mean_loss),
                                    tf.Summary.Value(tag="train/learning_rate", simple_value=learning_rate)])
        tf.summary.FileWriterCache.get(self._output_dir).add_summary(summary, step)
        self._losses = []
        self._last_step, self._last_time = step, now


PREDICTION_REPORT_SECONDS = 30.0


class PredictionProgressHook(tf.train.SessionRunHook):
    """Prediction / feature extraction: every PREDICTION_REPORT_SECONDS a line with the examples done and
    examples/s, and a last line when the predictions are exhausted."""

    def __init__(self, predictions):
        first = next(iter(predictions.values())) if isinstance(predictions, dict) else predictions
        self._batch_size = tf.shape(first)[0]

    def after_create_session(self, session, coord) -> None:
        self._start = self._last_report = time.time()
        self._examples = 0

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self._batch_size)

    def after_run(self, run_context, run_values) -> None:
        self._examples += int(run_values.results)
        if time.time() - self._last_report >= PREDICTION_REPORT_SECONDS:
            self._last_report = time.time()
            tf.logging.info("predicted %d examples, %.1f examples/s", self._examples, self._speed())

    def end(self, session) -> None:
        tf.logging.info("Predicted %d examples in %.1f s: %.1f examples/s", self._examples,
                        time.time() - self._start, self._speed())

    def _speed(self) -> float:
        seconds = time.time() - self._start
        return self._examples / seconds if seconds > 0 else 0.0


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


def write_key_value_results(path: str, results: Dict[str, object]) -> None:
    """Writes `key = value` lines sorted by key (eval_results.txt), logging each as the original did."""
    with tf.io.gfile.GFile(path, "w") as writer:
        tf.logging.info("***** Eval results *****")
        for key in sorted(results):
            tf.logging.info("  %s = %s", key, str(results[key]))
            writer.write(f"{key} = {str(results[key])}\n")


def read_key_value_results(path: str) -> Dict[str, str]:
    """Reads back a `key = value` file written by `write_key_value_results`."""
    results = {}
    with tf.io.gfile.GFile(path) as reader:
        for line in reader:
            if "=" in line:
                key, value = line.split("=", 1)
                results[key.strip()] = value.strip()
    return results


def checkpoint_global_step(model_dir: str) -> int:
    """The global step of the newest checkpoint in `model_dir`; 0 when there is none (training starts afresh)."""
    latest = tf.train.latest_checkpoint(model_dir) if tf.io.gfile.exists(model_dir) else None
    if not latest:
        return 0
    return int(tf.train.load_variable(latest, tf.GraphKeys.GLOBAL_STEP))


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
