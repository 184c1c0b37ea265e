"""The output folder of a run and the `key = value` results file (eval_results.txt) it writes there."""

from typing import Dict

import tensorflow.compat.v1 as tf

from bert.common.errors import UserError


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
