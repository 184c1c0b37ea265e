"""The output folder of a run: one writer at a time (a lock), and files that appear whole or not at all."""

import contextlib
import fcntl
import os
import socket
import sys
import time
from typing import Dict, Iterator

import tensorflow.compat.v1 as tf

from bert.common.errors import UserError
from bert.common.file_io import is_local_path, written_then_renamed

LOCK_FILE = ".bert-run.lock"


@contextlib.contextmanager
def output_dir_lock(output_dir: str) -> Iterator[None]:
    """Holds `output_dir` for this process: a second run into it ends in a UserError naming the process that holds
    it. The lock is the operating system's (flock on LOCK_FILE), so a killed run's lock is gone with the process and
    the next run takes over. A folder created for the lock and left empty by the run is removed again. Folders that are not local paths (gs://) are not locked: object stores have no locks."""
    if not is_local_path(output_dir):
        yield
        return
    created = not os.path.isdir(output_dir)
    make_output_dir(output_dir)
    path = os.path.join(output_dir, LOCK_FILE)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(descriptor, 4096).decode("utf-8", errors="replace").strip() or "another process"
        os.close(descriptor)
        raise UserError(f"output_dir {output_dir} is in use by another run ({holder}): wait for it to end, or give "
                        "another --output_dir") from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}: "
                         f"{' '.join(sys.argv)}".encode("utf-8"))
    try:
        yield
    finally:
        os.remove(path)
        os.close(descriptor)  # releases the lock
        if created and not os.listdir(output_dir):
            os.rmdir(output_dir)  # a run refused before any work leaves no folder behind


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


def write_key_value_results(path: str, results: Dict[str, object]) -> None:
    """Writes `key = value` lines sorted by key (eval_results.txt), logging each as the original did."""
    with written_then_renamed(path) as writer:
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
