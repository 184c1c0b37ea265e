"""What a trained model needs beside its weights to be used on raw text, saved by the run that trains or exports it.

A fine-tuned checkpoint alone does not say which task it solves, its labels, how its text was cut and tokenized:
the program's flags did. A run writes them to `bert_task.json` (and its vocabulary to `bert_task.vocab.txt`) in
its output_dir, and into `assets.extra/` of every SavedModel it exports, so that a predictor
(bert.serving.predictor) needs only the folder's path.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import tensorflow.compat.v1 as tf

from bert.common.errors import UserError
from bert.common.file_io import read_json_object, written_then_renamed

TASK_FILE = "bert_task.json"
VOCAB_FILE = "bert_task.vocab.txt"
SAVED_MODEL_EXTRAS = "assets.extra"  # where a SavedModel keeps files TensorFlow Serving does not read
FORMAT_VERSION = 1


@dataclasses.dataclass
class TaskDescription:
    """The task a model was trained for and the settings that turn text into its inputs."""

    task: str  # "classifier", "squad" or "ner"
    max_seq_length: int
    do_lower_case: bool
    bert_config: dict
    preserve_unused_tokens: bool = False
    task_name: Optional[str] = None  # e.g. "mrpc"
    labels: Optional[List[str]] = None  # a classifier's labels in output order (None for regression), NER's tags
    settings: Dict[str, Any] = dataclasses.field(default_factory=dict)  # the task's own flags, e.g. SQuAD's doc_stride


def save_task_description(folder: str, description: TaskDescription, vocab_file: str) -> None:
    """Writes `description` and a copy of `vocab_file` into `folder`, each file whole or not at all."""
    tf.io.gfile.makedirs(folder)
    with tf.io.gfile.GFile(vocab_file, "rb") as reader:
        vocab = reader.read()
    with written_then_renamed(os.path.join(folder, VOCAB_FILE), "wb") as writer:
        writer.write(vocab)
    content = dict(dataclasses.asdict(description), format_version=FORMAT_VERSION)
    with written_then_renamed(os.path.join(folder, TASK_FILE)) as writer:
        writer.write(json.dumps(content, indent=2, sort_keys=True) + "\n")


def save_with_saved_model(saved_model_dir: str, description: TaskDescription, vocab_file: str) -> None:
    """`save_task_description` into the SavedModel's assets.extra folder."""
    save_task_description(os.path.join(saved_model_dir, SAVED_MODEL_EXTRAS), description, vocab_file)


def load_task_description(folder: str) -> Tuple[TaskDescription, str]:
    """The TaskDescription saved in `folder` and the path of its vocabulary.

    Raises:
      UserError: the folder has no task file (not written by a training run, or by a version before it was
        saved), or the file is not one this version reads.
    """
    path = os.path.join(folder, TASK_FILE)
    if not tf.io.gfile.exists(path):
        raise UserError(f"{folder} holds no {TASK_FILE}: give the output_dir of a fine-tuning run made by this "
                        "version (it saves the task's labels and settings there) or a SavedModel its --export_dir "
                        "wrote; for a run made before, run the program again into it with --do_predict=true (no "
                        "training), which writes the file")
    content = read_json_object(path, "task file")
    version = content.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise UserError(f"task file {path} has format_version {version!r}; this version reads {FORMAT_VERSION}")
    names = {field.name for field in dataclasses.fields(TaskDescription)}
    unknown = sorted(set(content) - names)
    if unknown:
        raise UserError(f"task file {path} has keys this version does not know: {', '.join(unknown)}")
    try:
        description = TaskDescription(**content)
    except TypeError as error:
        raise UserError(f"task file {path} is incomplete: {error}") from None
    return description, os.path.join(folder, VOCAB_FILE)
