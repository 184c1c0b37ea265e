"""What every training run gets whichever engine runs it (bert.runtime.engine wraps both in GuardedEngine):

- SIGTERM (a preempted VM, `docker stop`, a batch scheduler) or SIGINT (Ctrl-C) stops training after the step that
  is running; the checkpoint saver then saves that step, as it does at the end of a run, and the program ends with
  one line saying which checkpoint the same command resumes from (exit status 128 + the signal). A second signal
  ends the process at once, saving nothing more.
- A loss that becomes NaN or infinite (TensorFlow's NanTensorHook stops the run before anything is saved) ends in one
  line naming the step, the likely causes and the checkpoint that stays the newest.

`faults_reported` (around every program's main) turns what the machine does to a run into one line too: a full
disk (naming the path and what a checkpoint needs; TensorFlow writes a checkpoint's `checkpoint` entry last, so the
previous one stays the newest), a file TensorFlow finds truncated or damaged (naming it, also when TensorFlow names
only a record's offset) and a gs:// path that cannot be reached (naming the flag).

On Cloud TPU the hooks run between loops of iterations_per_loop steps, so a signal stops training at the end of the
running loop.
"""

import contextlib
import errno
import glob
import os
import re
import signal
import threading
from typing import Callable, Iterator, List, Mapping, Optional, Sequence

import tensorflow.compat.v1 as tf

from bert.common.errors import RunInterrupted, UserError
from bert.runtime.input_pipeline import damaged_record_file

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _StopOnSignalHook(tf.train.SessionRunHook):
    """Remembers the global step after each training step, and asks the session to stop once a signal came."""

    def __init__(self):
        self.signal_number: Optional[int] = None
        self.last_step: Optional[int] = None

    def begin(self) -> None:
        self._global_step = tf.train.get_global_step()

    def after_create_session(self, session, coord) -> None:
        self.last_step = int(session.run(self._global_step))

    def after_run(self, run_context, run_values) -> None:
        self.last_step = int(run_context.session.run(self._global_step))
        if self.signal_number is not None:
            run_context.request_stop()

    def on_signal(self, signal_number: int, frame) -> None:
        if self.signal_number is not None:  # the second signal: stop now
            tf.logging.error("%s again: stopping at once, nothing saved since the last checkpoint",
                             signal.Signals(signal_number).name)
            os._exit(128 + signal_number)
        self.signal_number = signal_number
        tf.logging.warning("%s: stopping after the current step and saving a checkpoint (send it again to stop at "
                           "once)", signal.Signals(signal_number).name)


class GuardedEngine:
    """An engine (TPUEstimator, DistributedEstimator or SessionEstimator) whose `train` stops cleanly on a signal and
    reports divergence as a UserError, and whose `predict` refuses what would crash the process; everything else
    is the engine's own."""

    def __init__(self, engine, output_dir: str, precision: str = "fp32"):
        self._engine = engine
        self._output_dir = output_dir
        self._precision = precision

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def train(self, input_fn: Callable, hooks: Optional[Sequence] = None, **kwargs) -> "GuardedEngine":
        stopper = _StopOnSignalHook()
        previous_handlers = _install_handlers(stopper.on_signal)
        try:
            self._engine.train(input_fn, hooks=[stopper, *(hooks or ())], **kwargs)
        except tf.train.NanLossDuringTrainingError:
            raise UserError(_divergence_message(stopper.last_step, self._output_dir)) from None
        finally:
            _restore_handlers(previous_handlers)
        if stopper.signal_number is not None:
            name = signal.Signals(stopper.signal_number).name
            raise RunInterrupted(f"stopped by {name} at step {stopper.last_step}: saved "
                                 f"{tf.train.latest_checkpoint(self._output_dir)}; run the same command to resume "
                                 "from it", stopper.signal_number)
        return self

    def predict(self, input_fn: Callable, *args, **kwargs):
        if self._precision == "fp16" and not tf.config.list_physical_devices("GPU"):
            # Emulated float16 trains and evaluates on a CPU (for testing GPU runs), but TensorFlow's CPU float16
            # kernels crash the process (a segmentation fault) in the prediction graph's attention.
            raise UserError("--precision=fp16 prediction needs a GPU: on a CPU TensorFlow's float16 kernels crash "
                            "it; use --precision=bf16 (CPUs with bfloat16 units) or fp32")
        return self._engine.predict(input_fn, *args, **kwargs)


def _install_handlers(handler: Callable) -> dict:
    """Our handler for the stop signals; signals reach only the main thread, so elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {number: signal.signal(number, handler) for number in STOP_SIGNALS}


def _restore_handlers(previous: dict) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)


def _divergence_message(last_good_step: Optional[int], output_dir: str) -> str:
    step = "" if last_good_step is None else f" at step {last_good_step + 1}"
    newest = tf.train.latest_checkpoint(output_dir) if tf.io.gfile.exists(output_dir) else None
    kept = f"{newest} stays the newest checkpoint" if newest else "no checkpoint was saved"
    return (f"training diverged: the loss became NaN or infinite{step}; {kept}. Likely causes: a learning rate too "
            "high for this model and batch size (lower --learning_rate, or warm up longer), or float16 overflow "
            "with --precision=fp16 (use bf16 or fp32)")


@contextlib.contextmanager
def faults_reported(flag_values: Optional[Mapping[str, str]] = None) -> Iterator[None]:
    """Raises a UserError, naming the file or flag, for a full disk, a file TensorFlow finds truncated or damaged,
    or a gs:// path that cannot be reached. `flag_values` (the program's string flags by name) lets the line name
    the flag: --init_checkpoint for a short warm-start checkpoint, the --input_file / output_dir TFRecords searched
    for a record TensorFlow reports by its offset only, the flag holding an unreachable gs:// path."""
    flag_values = dict(flag_values or {})
    try:
        yield
    except tf.errors.ResourceExhaustedError as error:
        if "No space left on device" not in error.message:
            raise
        raise UserError(_disk_full_message(error.message.split(";")[0].strip())) from None
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise UserError(_disk_full_message(error.filename or "the output")) from None
    except tf.errors.OutOfRangeError as error:
        if "Read less bytes than requested" not in error.message:
            raise
        init_checkpoint = flag_values.get("init_checkpoint")
        which = (f"--init_checkpoint={init_checkpoint}" if "checkpoint_initializer" in error.message and init_checkpoint
                 else "the checkpoint being restored")
        raise UserError(f"{which}: a data file is shorter than its index says (an interrupted download or copy): "
                        "copy or download the checkpoint again") from None
    except tf.errors.DataLossError as error:
        raise UserError(_data_loss_message(error.message, _record_patterns(flag_values))) from None
    except tf.errors.OpError as error:
        remote_path = _REMOTE_PATH.search(error.message)
        if not remote_path:
            raise
        raise UserError(_unreachable_message(remote_path.group(0), _reason(error.message), flag_values)) from None


_REMOTE_PATH = re.compile(r"gs://[^\s'\"]+")


def _unreachable_message(path: str, reason: str, flag_values: Mapping[str, str]) -> str:
    flag = _flag_holding(path, flag_values)
    return (f"{flag + ': ' if flag else ''}cannot use {path}: {reason}. Check the path, this machine's network, and "
            "its credentials for the bucket (gcloud auth application-default login, or a service account with access "
            "to it)")


def _flag_holding(path: str, flag_values: Mapping[str, str]) -> Optional[str]:
    """`--name=value` of the flag whose value (a path, a glob or a comma-separated list of them) leads to `path`."""
    for name, value in flag_values.items():
        for part in value.split(","):
            prefix = part.strip().split("*")[0]
            if prefix.startswith("gs://") and (path.startswith(prefix) or prefix.startswith(path)):
                return f"--{name}={value}"
    return None


def _reason(tensorflow_message: str) -> str:
    """The line of a TensorFlow error message that says what went wrong (not where in the graph)."""
    lines = [line.strip() for line in tensorflow_message.splitlines()]
    reason = next((line for line in reversed(lines) if line and not line.startswith(("[[", "Node:", "File ", "when "))),
                  tensorflow_message.strip())
    return reason.split(", error details")[0]


def _record_patterns(flag_values: Mapping[str, str]) -> List[str]:
    """The TFRecord files a program may read: its --input_file patterns and the records it keeps in output_dir."""
    patterns = [os.path.join(flag_values["output_dir"], "*.tf_record")] if flag_values.get("output_dir") else []
    return patterns + [part.strip() for part in flag_values.get("input_file", "").split(",") if part.strip()]


_DAMAGED_RECORD = re.compile(r"(corrupted|truncated) record at (\d+)")


def _data_loss_message(tensorflow_message: str, record_patterns: Sequence[str]) -> str:
    damaged_record = _DAMAGED_RECORD.search(tensorflow_message)
    if damaged_record:
        kind, offset = damaged_record.group(1), int(damaged_record.group(2))
        candidates = [path for pattern in record_patterns for path in sorted(tf.io.gfile.glob(pattern))]
        path = damaged_record_file(candidates, offset)
        return (f"{path or 'a TFRecord file read by this run'}: the record at byte {offset} is {kind} (an "
                "interrupted write or copy, or a damaged disk): create or copy the file again")
    return (f"a file is truncated or damaged: {_reason(tensorflow_message)}; copy or create it again (an "
            "interrupted download, copy or run leaves such files)")


def _disk_full_message(path: str) -> str:
    path = re.sub(r"\.(tmp|partial-)[0-9a-f]*$", "", path)  # the temporary name a write used
    folder = os.path.dirname(path) or "."
    newest = tf.train.latest_checkpoint(folder) if tf.io.gfile.isdir(folder) else None
    message = f"no space left on the device of {path}: free space there or use a folder on a larger disk"
    if newest:
        size = sum(os.path.getsize(name) for name in glob.glob(glob.escape(newest) + ".*"))
        message += f" (each checkpoint here needs {size / 2**20:.1f} MiB); {newest} stays the newest checkpoint"
    return message
