"""Reading user files with errors that name them: local paths without TensorFlow, URLs (gs://) through tf.io.gfile.

TensorFlow is imported only for remote paths, so light tools (the SQuAD evaluator, the tokenizer) start fast.
"""

import json


def is_local_path(path: str) -> bool:
    """True for plain file-system paths, False for URLs such as gs://bucket/vocab.txt."""
    return "://" not in path


def read_text(path: str, what: str = "file") -> str:
    """The whole UTF-8 text of `path`; FileNotFoundError names `what` and the path."""
    if is_local_path(path):
        try:
            with open(path, "r", encoding="utf-8") as reader:
                return reader.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"{what} {path} not found") from None
    import tensorflow.compat.v1 as tf  # only remote paths need it

    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{what} {path} not found")
    with tf.io.gfile.GFile(path, "r") as reader:
        return reader.read()


def read_json(path: str, what: str = "JSON file"):
    """The parsed JSON of `path`; a syntax error becomes a ValueError naming the file, line and column."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno} "
                         f"(character {err.pos})") from None
