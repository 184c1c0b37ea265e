"""Reading and writing user files, with errors that name them: local paths directly, URLs (gs://) via tf.io.gfile.

TensorFlow is imported only for remote paths, so light tools (the SQuAD evaluator, the tokenizer) start fast.
"""

import contextlib
import json
import os
from typing import IO, Iterator

from bert.common.errors import UserError, UserFileNotFoundError


def is_local_path(path: str) -> bool:
    """True for plain file-system paths, False for URLs such as gs://bucket/vocab.txt."""
    return "://" not in path


def read_text(path: str, what: str = "file") -> str:
    """The whole UTF-8 text of `path`; a missing file or text that is not UTF-8 is a UserError naming `what`
    and the path (UserFileNotFoundError, also a FileNotFoundError, when it does not exist)."""
    if is_local_path(path):
        if not os.path.isfile(path):
            raise UserFileNotFoundError(f"{what} {path} not found" + (" (it is a folder)" if os.path.isdir(path)
                                                                        else ""))
        with open(path, "rb") as reader:
            data = reader.read()
    else:
        import tensorflow.compat.v1 as tf  # only remote paths need it

        if not tf.io.gfile.exists(path):
            raise UserFileNotFoundError(f"{what} {path} not found")
        with tf.io.gfile.GFile(path, "rb") as reader:
            data = reader.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise UserError(f"{what} {path}, line {line}: not valid UTF-8 text ({error.reason} at byte {error.start}); "
                        f"save the file as UTF-8") from None


def read_json(path: str, what: str = "JSON file"):
    """The parsed JSON of `path`; a syntax error becomes a UserError naming the file, line and column."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{what} {path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno} "
                         f"(character {err.pos})") from None


def read_json_object(path: str, what: str = "JSON file") -> dict:
    """`read_json` for files that must hold one JSON object (a config), not a list or a number."""
    content = read_json(path, what)
    if not isinstance(content, dict):
        raise UserError(f"{what} {path} does not hold a JSON object but a {type(content).__name__}")
    return content


class ReplacingFile:
    """A file that takes `path`'s name only when complete: it is written under a temporary name beside `path`;
    `commit()` renames it to `path` (atomic on local disks), `abandon()` removes it. A run killed while writing
    leaves no half-written file under `path`'s name (at most a `<path>.partial-<pid>` beside it)."""

    def __init__(self, path: str, mode: str = "w"):
        self.path = path
        self._temporary = temporary_name(path)
        if is_local_path(path):
            self.file = open(self._temporary, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
        else:
            import tensorflow.compat.v1 as tf  # only remote paths need it

            self.file = tf.io.gfile.GFile(self._temporary, mode)

    def commit(self) -> None:
        self.file.close()
        rename(self._temporary, self.path)

    def abandon(self) -> None:
        self.file.close()
        remove_if_present(self._temporary)


@contextlib.contextmanager
def written_then_renamed(path: str, mode: str = "w") -> Iterator[IO]:
    """The file of a ReplacingFile for `path`: committed when the block ends, abandoned when it raises."""
    replacing = ReplacingFile(path, mode)
    try:
        yield replacing.file
    except BaseException:
        replacing.abandon()
        raise
    replacing.commit()


def temporary_name(path: str) -> str:
    """Where a file is written before it takes `path`'s name: beside it, so the rename stays on one disk."""
    return f"{path}.partial-{os.getpid()}"


def rename(source: str, target: str) -> None:
    """Renames `source` to `target`, replacing it (atomically on a local disk)."""
    if is_local_path(target):
        os.replace(source, target)
        return
    import tensorflow.compat.v1 as tf

    tf.io.gfile.rename(source, target, overwrite=True)


def remove_if_present(path: str) -> None:
    if is_local_path(path):
        if os.path.exists(path):
            os.remove(path)
        return
    import tensorflow.compat.v1 as tf

    if tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)
