"""run_squad --do_predict with the fixed-head MiniLM checkpoint reproduces the original's files (1.1 and 2.0).

Exactly against the original run_squad.py run live on this machine (tests/live_original.py); within a tolerance
against the stored goldens, which were made on another machine."""

import json
import os
import subprocess
import sys

import pytest
from task_data import SQUAD_GOLDEN_TOLERANCE, assert_tie_in_golden

from helpers import REPO_ROOT, shared_path
from live_original import SQUAD_FLAGS, SQUAD_V2_FLAGS, checkpoint_flags

SCRIPT = os.path.join(REPO_ROOT, "scripts", "run_squad.py")


def run_predict(checkpoint_dir: str, output_dir: str, *extra_flags: str,
                predict_file: str = "") -> str:
    """Our run_squad with the flags the goldens were made with (shared README), plus `extra_flags`."""
    predict_file = predict_file or shared_path("data", "squad", "squad_public.json")
    command = [sys.executable, SCRIPT, *SQUAD_FLAGS, f"--predict_file={predict_file}",
               *checkpoint_flags(checkpoint_dir), f"--output_dir={output_dir}", *extra_flags]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return output_dir


@pytest.fixture(scope="module")
def v1_output(fixed_head_checkpoint, tmp_path_factory):
    return run_predict(fixed_head_checkpoint, str(tmp_path_factory.mktemp("squad_v1")))


@pytest.fixture(scope="module")
def v2_output(fixed_head_checkpoint, tmp_path_factory):
    return run_predict(fixed_head_checkpoint, str(tmp_path_factory.mktemp("squad_v2")), *SQUAD_V2_FLAGS)


@pytest.fixture(scope="module")
def v2_answerable_output(fixed_head_checkpoint, squad_v2_answerable_file, tmp_path_factory):
    return run_predict(fixed_head_checkpoint, str(tmp_path_factory.mktemp("squad_v2_answerable")),
                       *SQUAD_V2_FLAGS, predict_file=squad_v2_answerable_file)


def read_bytes(folder, name):
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


@pytest.mark.slow
@pytest.mark.needs_tf215  # the original's code (TPUEstimator, tf.layers) or tf.estimator
def test_v1_files_equal_the_original_programs_run_live(v1_output, original_squad_v1_output):
    for name in ("predictions.json", "nbest_predictions.json"):
        assert read_bytes(v1_output, name) == read_bytes(original_squad_v1_output, name), name


@pytest.mark.slow
@pytest.mark.needs_tf215  # the original's code (TPUEstimator, tf.layers) or tf.estimator
def test_v2_files_equal_the_original_programs_run_live(v2_answerable_output, original_squad_v2_output):
    """On the questions the original can write in 2.0 mode (all but those whose n-best is only the null answer)."""
    for name in ("predictions.json", "nbest_predictions.json", "null_odds.json"):
        assert read_bytes(v2_answerable_output, name) == read_bytes(original_squad_v2_output, name), name


def load(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as f:
        return json.load(f)


def assert_nbest_close(golden, ours):
    assert list(ours) == list(golden)
    differences = [0.0]
    for qid, golden_entries in golden.items():
        entries = ours[qid]
        if [e["text"] for e in entries] != [e["text"] for e in golden_entries]:
            assert_tie_in_golden(golden_entries, entries, qid)
            continue
        for entry, golden_entry in zip(entries, golden_entries):
            for key in ("probability", "start_logit", "end_logit"):
                differences.append(abs(entry[key] - golden_entry[key]))
                assert differences[-1] <= SQUAD_GOLDEN_TOLERANCE, (qid, key)
    print(f"n-best: max abs diff from the stored golden {max(differences):.3g}")


@pytest.mark.slow
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_predictions_and_nbest_match_the_stored_goldens(version, request):
    output_dir = request.getfixturevalue(f"{version}_output")
    golden_dir = shared_path("golden", "squad", version)
    golden_nbest = load(golden_dir, "nbest_predictions.json")
    golden_predictions = load(golden_dir, "predictions.json")
    predictions = load(output_dir, "predictions.json")
    assert list(predictions) == list(golden_predictions)
    for qid, text in predictions.items():
        if text != golden_predictions[qid]:
            assert_tie_in_golden(golden_nbest[qid], load(output_dir, "nbest_predictions.json")[qid], qid)
    assert_nbest_close(golden_nbest, load(output_dir, "nbest_predictions.json"))
    assert os.path.exists(os.path.join(output_dir, "eval.tf_record"))


@pytest.mark.slow
def test_v1_writes_no_null_odds(v1_output):
    assert not os.path.exists(os.path.join(v1_output, "null_odds.json"))


@pytest.mark.slow
def test_v2_null_odds_match_the_stored_golden(v2_output):
    golden = load(shared_path("golden", "squad", "v2"), "null_odds.json")
    ours = load(v2_output, "null_odds.json")
    assert list(ours) == list(golden)
    for qid, value in golden.items():
        assert abs(ours[qid] - value) <= SQUAD_GOLDEN_TOLERANCE, qid


@pytest.mark.slow
def test_v2_includes_questions_without_non_null_candidate(v2_output):
    """The golden has questions whose n-best holds only "": the original crashed on them, we predict ""."""
    nbest = load(v2_output, "nbest_predictions.json")
    only_null = [qid for qid, entries in nbest.items() if all(e["text"] == "" for e in entries)]
    assert only_null
    predictions, null_odds = load(v2_output, "predictions.json"), load(v2_output, "null_odds.json")
    for qid in only_null:
        entry = nbest[qid][0]
        assert predictions[qid] == ""
        assert null_odds[qid] == pytest.approx(entry["start_logit"] + entry["end_logit"], abs=1e-12)


@pytest.mark.slow
def test_files_use_the_original_json_layout(v1_output):
    with open(os.path.join(v1_output, "predictions.json"), encoding="utf-8") as f:
        text = f.read()
    assert text == json.dumps(json.loads(text), indent=4) + "\n"
