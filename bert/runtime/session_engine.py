"""The session engine: runs a task's model_fn and input_fns where TensorFlow has no tf.estimator (2.16 and later).

It drives the same model_fn (modes, specs, `params["batch_size"]`) on the session machinery TensorFlow keeps in
tf.compat.v1 (MonitoredTrainingSession, Scaffold, Saver, CheckpointSaverHook) and writes what the Estimator writes
in output_dir: `model.ckpt-N.*` and `checkpoint` (sharded saves, `keep_checkpoint_max` kept), `graph.pbtxt`,
`events.*`, and evaluation summaries under `eval/`; SavedModels go to numbered folders of the export directory.
So a run started by one engine is continued, evaluated or exported by the other. Behaviour follows the Estimator's:
training resumes from the newest checkpoint in output_dir (else starts from the variables' initialisers, where
init_from_checkpoint has put the warm-start weights); evaluation and prediction restore the newest checkpoint, or
initialise the same way when there is none; a NaN loss stops training with NanLossDuringTrainingError. Its own
lines are the Estimator's, at DEBUG (shown with --verbosity=1), as the programs show the Estimator's.
"""

import os
import time
from typing import Callable, Dict, Iterator, Optional, Sequence

import numpy as np
import tensorflow.compat.v1 as tf

from bert.runtime import checkpoints, performance
from bert.runtime.options import RunSettings
from bert.runtime.specs import ModeKeys

# Estimator's defaults for what this engine does not expose as settings.
SAVE_SUMMARY_STEPS = 100
KEEP_CHECKPOINT_EVERY_N_HOURS = 10000
EVAL_DIR = "eval"


class _InitializeIteratorHook(tf.train.SessionRunHook):
    """Starts the input pipeline once the session exists (and after any checkpoint was restored)."""

    def __init__(self, initializer: tf.Operation):
        self._initializer = initializer

    def after_create_session(self, session, coord) -> None:
        session.run(self._initializer)


class _Graph:
    """One mode's graph: global step, the input_fn's next batch, and the model_fn's spec on it."""

    def __init__(self, graph: tf.Graph, spec, iterator_hook: Optional[_InitializeIteratorHook]):
        self.graph = graph
        self.spec = spec
        self.iterator_hooks = [iterator_hook] if iterator_hook else []


class SessionEstimator:
    """The tf.estimator interface the tasks use (`train`, `evaluate`, `predict`, `export_saved_model`,
    `model_dir`, `params`) over TensorFlow's session machinery; see the module docstring."""

    def __init__(self, model_fn: Callable, settings: RunSettings, batch_sizes: Dict[str, Optional[int]],
                 params: Optional[dict] = None):
        self._model_fn = model_fn
        self._settings = settings
        self._batch_sizes = dict(batch_sizes)
        self.params = dict(params or {})
        self.model_dir = settings.output_dir
        self._session_config = performance.session_config(settings.performance)

    # --- graphs ---------------------------------------------------------------------------------------------------

    def _params(self, mode: str) -> dict:
        batch_size = self._batch_sizes.get(mode)
        if batch_size is None:
            raise ValueError(f"make_estimator was given no batch size for mode {mode}")
        return dict(self.params, batch_size=batch_size)

    def _build(self, mode: str, input_fn: Callable) -> _Graph:
        """As Estimator does: a new graph, the run's seed, the global step, then input_fn, then model_fn."""
        graph = tf.Graph()
        with graph.as_default():
            if self._settings.seed is not None:
                tf.set_random_seed(self._settings.seed)
            tf.train.get_or_create_global_step()
            params = self._params(mode)
            inputs = input_fn(params=params)
            hook = None
            if isinstance(inputs, tf.data.Dataset):
                iterator = tf.data.make_initializable_iterator(inputs)
                hook = _InitializeIteratorHook(iterator.initializer)
                inputs = iterator.get_next()
            features, labels = inputs if isinstance(inputs, tuple) else (inputs, None)
            spec = self._model_fn(features, labels, mode, params)
        return _Graph(graph, spec, hook)

    def _scaffold(self, spec) -> tf.train.Scaffold:
        """A scaffold with the Estimator's saver: sharded, relative paths, keep_checkpoint_max kept."""
        if spec.scaffold_fn:
            spec.scaffold_fn()  # a TPU-style model_fn warm-starts inside it
        return tf.train.Scaffold(saver=tf.train.Saver(
            sharded=True, max_to_keep=self._settings.keep_checkpoint_max,
            keep_checkpoint_every_n_hours=KEEP_CHECKPOINT_EVERY_N_HOURS, defer_build=True, save_relative_paths=True))

    def _restore_point(self, checkpoint_path: Optional[str], purpose: str) -> Optional[str]:
        checkpoint = checkpoint_path or (tf.train.latest_checkpoint(self.model_dir)
                                         if tf.io.gfile.exists(self.model_dir) else None)
        if checkpoint is None:
            tf.logging.debug("Could not find trained model in model_dir: %s, running initialization to %s.",
                            self.model_dir, purpose)
        return checkpoint

    # --- train ----------------------------------------------------------------------------------------------------

    def train(self, input_fn: Callable, hooks: Optional[Sequence] = None, steps: Optional[int] = None,
              max_steps: Optional[int] = None, saving_listeners: Optional[Sequence] = None) -> "SessionEstimator":
        """Trains until the global step reaches `max_steps` (or for `steps` more), resuming from output_dir."""
        if steps is not None and max_steps is not None:
            raise ValueError("Can not provide both steps and max_steps.")
        if max_steps is not None and checkpoints.checkpoint_global_step(self.model_dir) >= max_steps:
            tf.logging.debug("Skipping training since max_steps has already saved.")
            return self
        built = self._build(ModeKeys.TRAIN, input_fn)
        spec = built.spec
        with built.graph.as_default():
            if not any(summary.op.name == "loss" for summary in tf.get_collection(tf.GraphKeys.SUMMARIES)):
                tf.summary.scalar("loss", spec.loss)  # as Estimator: TensorBoard's loss curve, every 100 steps
            scaffold = self._scaffold(spec)
            all_hooks = (built.iterator_hooks + [tf.train.StopAtStepHook(num_steps=steps, last_step=max_steps)]
                         + list(hooks or ()) + [tf.train.NanTensorHook(spec.loss)] + list(spec.training_hooks or ()))
            saver_hook = tf.train.CheckpointSaverHook(self.model_dir, save_steps=self._settings.save_checkpoints_steps,
                                                      scaffold=scaffold, listeners=saving_listeners)
            summary_hook = tf.train.SummarySaverHook(save_steps=SAVE_SUMMARY_STEPS, output_dir=self.model_dir,
                                                     scaffold=scaffold)
            loss = None
            with tf.train.MonitoredTrainingSession(
                    is_chief=True, checkpoint_dir=self.model_dir, scaffold=scaffold, hooks=all_hooks,
                    chief_only_hooks=[saver_hook, summary_hook], save_checkpoint_secs=None,
                    save_checkpoint_steps=None, save_summaries_steps=None, save_summaries_secs=None,
                    log_step_count_steps=None, config=self._session_config) as session:
                while not session.should_stop():
                    _, loss = session.run([spec.train_op, spec.loss])
        if loss is not None:
            tf.logging.debug("Loss for final step: %s.", loss)
        return self

    # --- evaluate -------------------------------------------------------------------------------------------------

    def evaluate(self, input_fn: Callable, steps: Optional[int] = None, hooks: Optional[Sequence] = None,
                 checkpoint_path: Optional[str] = None, name: Optional[str] = None) -> Dict[str, np.generic]:
        """The spec's eval metrics plus `loss` (mean batch loss) and `global_step` over `steps` batches (all
        without), written as summaries to output_dir/eval as the Estimator does."""
        built = self._build(ModeKeys.EVAL, input_fn)
        spec = built.spec
        with built.graph.as_default():
            metrics = {}
            if spec.eval_metrics is not None:
                metric_fn, tensors = spec.eval_metrics
                metrics = dict(metric_fn(**tensors) if isinstance(tensors, dict) else metric_fn(*tensors))
            metrics["loss"] = tf.metrics.mean(spec.loss)
            update_op = tf.group(*[update for _, update in metrics.values()])
            final_ops = {name: value for name, (value, _) in metrics.items()}
            final_ops["global_step"] = tf.train.get_global_step()
            final_hook = tf.train.FinalOpsHook(final_ops)
            checkpoint = self._restore_point(checkpoint_path, "evaluate")
            tf.logging.debug("Starting evaluation at %s", time.strftime("%Y-%m-%dT%H:%M:%S"))
            creator = tf.train.ChiefSessionCreator(scaffold=self._scaffold(spec), config=self._session_config,
                                                   checkpoint_filename_with_path=checkpoint)
            all_hooks = built.iterator_hooks + list(spec.evaluation_hooks or ()) + list(hooks or ()) + [final_hook]
            with tf.train.MonitoredSession(session_creator=creator, hooks=all_hooks) as session:
                done = 0
                while not session.should_stop() and (steps is None or done < steps):
                    session.run(update_op)
                    done += 1
        results = final_hook.final_ops_values
        tf.logging.debug("Saving dict for global step %d: %s", results["global_step"],
                        ", ".join(f"{key} = {results[key]}" for key in sorted(results)))
        self._write_eval_summary(results, name)
        return results

    def _write_eval_summary(self, results: Dict[str, np.generic], name: Optional[str]) -> None:
        eval_dir = os.path.join(self.model_dir, EVAL_DIR if not name else f"{EVAL_DIR}_{name}")
        values = [tf.Summary.Value(tag=key, simple_value=float(value)) for key, value in sorted(results.items())
                  if key != "global_step" and np.ndim(value) == 0]
        with tf.Graph().as_default():  # summary writers of tf.compat.v1 refuse to exist outside a graph
            writer = tf.summary.FileWriterCache.get(eval_dir)
            writer.add_summary(tf.Summary(value=values), int(results["global_step"]))
            writer.flush()

    # --- predict --------------------------------------------------------------------------------------------------

    def predict(self, input_fn: Callable, predict_keys: Optional[Sequence[str]] = None,
                hooks: Optional[Sequence] = None, checkpoint_path: Optional[str] = None,
                yield_single_examples: bool = True) -> Iterator:
        """The spec's predictions for every batch input_fn gives: one dict (or array) per example, or per batch."""
        built = self._build(ModeKeys.PREDICT, input_fn)
        spec = built.spec
        with built.graph.as_default():
            predictions = spec.predictions
            if predict_keys is not None:
                predictions = {key: predictions[key] for key in predict_keys}
            checkpoint = self._restore_point(checkpoint_path, "predict")
            creator = tf.train.ChiefSessionCreator(scaffold=self._scaffold(spec), config=self._session_config,
                                                   checkpoint_filename_with_path=checkpoint)
            all_hooks = built.iterator_hooks + list(spec.prediction_hooks or ()) + list(hooks or ())
            with tf.train.MonitoredSession(session_creator=creator, hooks=all_hooks) as session:
                while not session.should_stop():
                    batch = session.run(predictions)
                    if not yield_single_examples:
                        yield batch
                    elif isinstance(batch, dict):
                        size = len(next(iter(batch.values())))
                        for index in range(size):
                            yield {key: value[index] for key, value in batch.items()}
                    else:
                        yield from batch

    # --- export ---------------------------------------------------------------------------------------------------

    def export_saved_model(self, export_dir_base: str, serving_input_receiver_fn: Callable,
                           checkpoint_path: Optional[str] = None) -> str:
        """Writes the PREDICT graph with the weights of `checkpoint_path` (default: the newest in output_dir) as a
        SavedModel (tag serve, signature serving_default) into a new numbered folder of `export_dir_base`."""
        checkpoint = checkpoint_path or tf.train.latest_checkpoint(self.model_dir)
        if not checkpoint:
            raise ValueError(f"Couldn't find trained model at {self.model_dir}.")
        with tf.Graph().as_default() as graph:
            tf.train.get_or_create_global_step()
            receiver = serving_input_receiver_fn()
            params = dict(self.params, batch_size=self._batch_sizes.get(ModeKeys.PREDICT))
            spec = self._model_fn(receiver.features, None, ModeKeys.PREDICT, params)
            outputs = spec.predictions if isinstance(spec.predictions, dict) else {"output": spec.predictions}
            signature = tf.saved_model.predict_signature_def(receiver.receiver_tensors, outputs)
            saver = tf.train.Saver(sharded=True)
            final_dir, temp_dir = _new_export_dirs(export_dir_base)
            with tf.Session(graph=graph, config=self._session_config) as session:
                saver.restore(session, checkpoint)
                builder = tf.saved_model.Builder(temp_dir)
                builder.add_meta_graph_and_variables(
                    session, [tf.saved_model.SERVING],
                    signature_def_map={tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature},
                    main_op=tf.group(tf.local_variables_initializer(), tf.tables_initializer()),
                    strip_default_attrs=True, saver=saver)
                builder.save()
        tf.io.gfile.rename(temp_dir, final_dir)
        return final_dir


def _new_export_dirs(export_dir_base: str):
    """A numbered (Unix time) folder that does not exist yet, and the temporary name it is written under."""
    while True:
        name = str(int(time.time()))
        final_dir = os.path.join(export_dir_base, name)
        if not tf.io.gfile.exists(final_dir):
            return final_dir, os.path.join(export_dir_base, f"temp-{name}")
        time.sleep(1)
