"""Progress lines (and TensorBoard summaries) of training and prediction, as session hooks."""

import dataclasses
import datetime
import time
from typing import List, Optional

import tensorflow.compat.v1 as tf


@dataclasses.dataclass
class ProgressSettings:
    every_steps: int
    examples_per_step: Optional[int]
    output_dir: str


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

    def __init__(self, loss: tf.Tensor, learning_rate: tf.Tensor, total_steps: int, settings: ProgressSettings):
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
