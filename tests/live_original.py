"""The original release, run live on this machine: the oracle of every "identical to the original" claim.

Float results of the same graph differ in the last bits between CPU families (oneDNN picks other kernels), so an
exact comparison only means something against the original computed on the same machine, in the same test run.
The original's files (google-research/bert, unchanged) are found at $ORIGINAL_BERT_DIR, by default in the shared
folder (`original_bert/`); its programs run under TensorFlow 2.15 through tests/original_tf1.py.

The fixtures here run each original program once per test session, on the inputs and flags of the stored goldens
(../shared/README.md), and give the folder it wrote. Tests compare our files with these exactly, and with the
stored goldens (made on another machine) within a tolerance written next to each assertion.
"""

import json
import os
import subprocess
import sys
import types
from typing import Sequence

import pytest

from helpers import REPO_ROOT, SHARED_DIR, require, shared_path

ORIGINAL_BERT_DIR = os.path.abspath(os.environ.get("ORIGINAL_BERT_DIR") or os.path.join(SHARED_DIR, "original_bert"))
ORIGINAL_TF1 = os.path.join(REPO_ROOT, "tests", "original_tf1.py")
# The SQuAD goldens' flags (../shared/README.md).
SQUAD_FLAGS = ("--do_predict=True", "--max_seq_length=128", "--doc_stride=64", "--max_query_length=32",
               "--predict_batch_size=16", "--do_lower_case=True")
SQUAD_V2_FLAGS = ("--version_2_with_negative=True", "--null_score_diff_threshold=-1.0")


def original_bert_dir() -> str:
    """The folder of the original's files; the calling test needs it (skips outside CI, fails in CI)."""
    require(os.path.isfile(os.path.join(ORIGINAL_BERT_DIR, "modeling.py")),
            f"the original release's files in {ORIGINAL_BERT_DIR} (set ORIGINAL_BERT_DIR to a checkout of "
            "google-research/bert, or BERT_SHARED_DIR to the shared folder holding original_bert/)")
    return ORIGINAL_BERT_DIR


def original_program_command(script: str) -> list:
    """The command line that runs the original's `script` (e.g. "run_classifier.py") unchanged; flags follow."""
    return [sys.executable, ORIGINAL_TF1, original_bert_dir(), script]


def run_original_program(script: str, flags: Sequence[str], timeout: float = 1800) -> None:
    """Runs the original's `script` with `flags` on the CPU; fails the test with its stderr if it fails."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    completed = subprocess.run(original_program_command(script) + list(flags), capture_output=True, text=True,
                               env=env, timeout=timeout, cwd=REPO_ROOT)
    assert completed.returncode == 0, f"the original {script} failed:\n{completed.stderr[-3000:]}"


def load_original_module(name: str) -> types.ModuleType:
    """The original's `name`.py (e.g. "modeling", "tokenization") as a module of this process, its
    `import tensorflow` given the TF 1 stand-in."""
    import original_code

    return original_code.load_module(os.path.join(original_bert_dir(), name + ".py"), f"original_bert_{name}",
                                     original_code.tensorflow1_stand_in())


def checkpoint_flags(checkpoint_dir: str) -> list:
    return [f"--vocab_file={os.path.join(checkpoint_dir, 'vocab.txt')}",
            f"--bert_config_file={os.path.join(checkpoint_dir, 'bert_config.json')}",
            f"--init_checkpoint={os.path.join(checkpoint_dir, 'bert_model.ckpt')}"]


@pytest.fixture(scope="session")
def original_classifier_output(fixed_head_checkpoint, tmp_path_factory) -> str:
    """Folder of the original run_classifier.py's eval_results.txt and test_results.tsv, with the classifier
    golden's flags on mrpc_small."""
    data_dir = os.path.dirname(shared_path("data", "mrpc_small", "dev.tsv"))
    output_dir = str(tmp_path_factory.mktemp("original_classifier"))
    run_original_program("run_classifier.py", [
        "--task_name=MRPC", "--do_eval=true", "--do_predict=true", f"--data_dir={data_dir}", "--max_seq_length=128",
        "--eval_batch_size=8", "--predict_batch_size=8", f"--output_dir={output_dir}",
        *checkpoint_flags(fixed_head_checkpoint)])
    return output_dir


def squad_questions_with_a_non_null_answer(nbest_file: str, predict_file: str, output_file: str) -> str:
    """Writes `predict_file` less the questions whose n-best (in `nbest_file`) holds only the null answer.

    The original's write_predictions fails in 2.0 mode on such a question (it reads the best non-null entry, which
    does not exist), so it can be run live only on the others.
    """
    with open(nbest_file, encoding="utf-8") as f:
        only_null = {qid for qid, entries in json.load(f).items() if all(e["text"] == "" for e in entries)}
    with open(predict_file, encoding="utf-8") as f:
        dataset = json.load(f)
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = [qa for qa in paragraph["qas"] if qa["id"] not in only_null]
    with open(output_file, "w", encoding="utf-8") as f:
        json.dump(dataset, f)
    return output_file


@pytest.fixture(scope="session")
def squad_v2_answerable_file(tmp_path_factory) -> str:
    """The SQuAD golden's questions less the 2.0 ones the original cannot write (see the function above)."""
    return squad_questions_with_a_non_null_answer(
        shared_path("golden", "squad", "v2", "nbest_predictions.json"),
        shared_path("data", "squad", "squad_public.json"),
        str(tmp_path_factory.mktemp("squad_v2_input") / "answerable.json"))


def run_original_squad(checkpoint_dir: str, predict_file: str, output_dir: str, *extra_flags: str) -> str:
    run_original_program("run_squad.py", [*SQUAD_FLAGS, f"--predict_file={predict_file}",
                                          f"--output_dir={output_dir}", *checkpoint_flags(checkpoint_dir),
                                          *extra_flags])
    return output_dir


@pytest.fixture(scope="session")
def original_squad_v1_output(fixed_head_checkpoint, tmp_path_factory) -> str:
    """Folder of the original run_squad.py's predictions.json and nbest_predictions.json (the 1.1 golden's run)."""
    return run_original_squad(fixed_head_checkpoint, shared_path("data", "squad", "squad_public.json"),
                              str(tmp_path_factory.mktemp("original_squad_v1")))


@pytest.fixture(scope="session")
def original_squad_v2_output(fixed_head_checkpoint, squad_v2_answerable_file, tmp_path_factory) -> str:
    """The same in 2.0 mode (plus null_odds.json), on `squad_v2_answerable_file`."""
    return run_original_squad(fixed_head_checkpoint, squad_v2_answerable_file,
                              str(tmp_path_factory.mktemp("original_squad_v2")), *SQUAD_V2_FLAGS)


@pytest.fixture(scope="session")
def original_pretraining_eval_output(fixed_head_checkpoint, tmp_path_factory) -> str:
    """Folder of the original run_pretraining.py's eval_results.txt (the pre-training golden's run)."""
    output_dir = str(tmp_path_factory.mktemp("original_pretraining"))
    run_original_program("run_pretraining.py", [
        f"--input_file={shared_path('golden', 'pretraining', 'sample.tfrecord')}", "--do_eval=True",
        "--eval_batch_size=8", "--max_seq_length=128", "--max_predictions_per_seq=20", "--max_eval_steps=10",
        f"--output_dir={output_dir}",
        f"--bert_config_file={os.path.join(fixed_head_checkpoint, 'bert_config.json')}",
        f"--init_checkpoint={os.path.join(fixed_head_checkpoint, 'bert_model.ckpt')}"])
    return output_dir
