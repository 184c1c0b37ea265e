"""run_squad --do_predict with the fixed-head MiniLM checkpoint reproduces the original's files (1.1 and 2.0)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, shared_path

SCRIPT = os.path.join(REPO_ROOT, "scripts", "run_squad.py")
TOLERANCE = 1e-4


def run_predict(checkpoint_dir: str, output_dir: str, *extra_flags: str) -> str:
    """The flags the goldens were made with (shared README), plus `extra_flags`."""
    command = [
        sys.executable, SCRIPT, "--do_predict=True",
        f"--predict_file={shared_path('data', 'squad', 'squad_public.json')}",
        "--max_seq_length=128", "--doc_stride=64", "--max_query_length=32", "--predict_batch_size=16",
        f"--vocab_file={os.path.join(checkpoint_dir, 'vocab.txt')}",
        f"--bert_config_file={os.path.join(checkpoint_dir, 'bert_config.json')}",
        f"--init_checkpoint={os.path.join(checkpoint_dir, 'bert_model.ckpt')}",
        "--do_lower_case=True", f"--output_dir={output_dir}", *extra_flags]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return output_dir


@pytest.fixture(scope="module")
def v1_output(fixed_head_checkpoint, tmp_path_factory):
    return run_predict(fixed_head_checkpoint, str(tmp_path_factory.mktemp("squad_v1")))


@pytest.fixture(scope="module")
def v2_output(fixed_head_checkpoint, tmp_path_factory):
    return run_predict(fixed_head_checkpoint, str(tmp_path_factory.mktemp("squad_v2")),
                       "--version_2_with_negative=True", "--null_score_diff_threshold=-1.0")


def load(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as f:
        return json.load(f)


def assert_nbest_close(golden, ours):
    assert list(ours) == list(golden)
    for qid, golden_entries in golden.items():
        entries = ours[qid]
        assert [e["text"] for e in entries] == [e["text"] for e in golden_entries], qid
        for entry, golden_entry in zip(entries, golden_entries):
            for key in ("probability", "start_logit", "end_logit"):
                assert abs(entry[key] - golden_entry[key]) <= TOLERANCE, (qid, key)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_predictions_and_nbest_match_golden(version, request):
    output_dir = request.getfixturevalue(f"{version}_output")
    golden_dir = shared_path("golden", "squad", version)
    golden_predictions = load(golden_dir, "predictions.json")
    predictions = load(output_dir, "predictions.json")
    assert list(predictions) == list(golden_predictions)
    assert predictions == golden_predictions
    assert_nbest_close(load(golden_dir, "nbest_predictions.json"), load(output_dir, "nbest_predictions.json"))
    assert os.path.exists(os.path.join(output_dir, "eval.tf_record"))


def test_v1_writes_no_null_odds(v1_output):
    assert not os.path.exists(os.path.join(v1_output, "null_odds.json"))


def test_v2_null_odds_match_golden(v2_output):
    golden = load(shared_path("golden", "squad", "v2"), "null_odds.json")
    ours = load(v2_output, "null_odds.json")
    assert list(ours) == list(golden)
    for qid, value in golden.items():
        assert abs(ours[qid] - value) <= TOLERANCE, qid


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


def test_files_use_the_original_json_layout(v1_output):
    with open(os.path.join(v1_output, "predictions.json"), encoding="utf-8") as f:
        text = f.read()
    assert text == json.dumps(json.loads(text), indent=4) + "\n"
