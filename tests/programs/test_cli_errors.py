"""Bad input through each program's command line: one `error: ...` line naming the flag/file/line, a non-zero
exit status and no traceback.

Every case is its own process (each imports TensorFlow); they run a few at a time in one module fixture.
"""

import concurrent.futures
import json
import os

import pytest

from cli_helpers import last_line, run_script
from helpers import make_tiny_model_dir

MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
MRPC_ROW = "1\t1\t2\tthe dog\tthe dog\n"


def _write(path, content, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(content)
    return path


def _mrpc_dir(root, name, train_rows):
    folder = os.path.join(root, name)
    _write(os.path.join(folder, "train.tsv"), MRPC_HEADER.encode() + train_rows, "wb")
    for split in ("dev.tsv", "test.tsv"):
        _write(os.path.join(folder, split), MRPC_HEADER + MRPC_ROW)
    return folder


def _squad_file(path, ids):
    qas = [{"id": qid, "question": "who ?", "answers": [{"text": "dog", "answer_start": 4}]} for qid in ids]
    return _write(path, json.dumps({"version": "1.1", "data": [
        {"title": "t", "paragraphs": [{"context": "the dog was big", "qas": qas}]}]}))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The tiny model and every bad (and good) file the cases name, in one folder."""
    root = str(tmp_path_factory.mktemp("cli_errors"))
    model = make_tiny_model_dir(os.path.join(root, "model"))
    config = json.load(open(os.path.join(model, "bert_config.json")))
    paths = dict(root=root, model=model, vocab=os.path.join(model, "vocab.txt"),
                 config=os.path.join(model, "bert_config.json"), ckpt=os.path.join(model, "bert_model.ckpt"))
    paths["good_data"] = _mrpc_dir(root, "good", MRPC_ROW.encode() * 4)
    paths["short_row"] = _mrpc_dir(root, "short", MRPC_ROW.encode() + b"1\tonly two columns\n")
    paths["bad_utf8"] = _mrpc_dir(root, "utf8", MRPC_ROW.encode() + b"1\t1\t2\tthe \xff dog\tthe dog\n")
    paths["bad_label"] = _mrpc_dir(root, "label", b"7\t1\t2\tthe dog\tthe dog\n")
    big_vocab = open(paths["vocab"]).read() + "".join(f"extra{i}\n" for i in range(10))
    paths["big_vocab"] = _write(os.path.join(root, "big_vocab.txt"), big_vocab)
    paths["bad_utf8_vocab"] = _write(os.path.join(root, "bad_vocab.txt"), b"[PAD]\n[UNK]\n\xfe\xff\n", "wb")
    paths["broken_config"] = _write(os.path.join(root, "broken_config.json"), '{"hidden_size": 32,\n "x": }')
    paths["keyless_config"] = _write(os.path.join(root, "keyless_config.json"),
                                     json.dumps({k: v for k, v in config.items() if k != "vocab_size"}))
    paths["bad_act_config"] = _write(os.path.join(root, "bad_act_config.json"),
                                     json.dumps(dict(config, hidden_act="swish2")))
    paths["empty_corpus"] = _write(os.path.join(root, "empty.txt"), "\n\n")
    paths["corpus"] = _write(os.path.join(root, "corpus.txt"), "the dog was big .\nthe cat was small .\n\n"
                                                                  "a man said yes .\nthe house is old .\n")
    paths["broken_squad"] = _write(os.path.join(root, "broken_squad.json"),
                                   '{"version": "1.1",\n  "data": [\n    {"title": "t" "paragraphs": []}]}')
    paths["squad"] = _squad_file(os.path.join(root, "squad.json"), ["q1", "q2"])
    paths["other_predictions"] = _write(os.path.join(root, "other_predictions.json"), json.dumps({"z9": "dog"}))
    paths["not_squad"] = _write(os.path.join(root, "not_squad.json"), json.dumps({"version": "1.1", "data": [{}]}))
    paths["text_file"] = _write(os.path.join(root, "a_file"), "not a folder\n")
    paths["lines"] = _write(os.path.join(root, "lines.txt"), "the dog\nthe cat ||| a man\n")
    paths["hf_without_weights"] = os.path.join(root, "hf")
    _write(os.path.join(paths["hf_without_weights"], "config.json"), json.dumps({"model_type": "bert"}))
    _write(os.path.join(paths["hf_without_weights"], "vocab.txt"), "[PAD]\n")
    return paths


def _classifier(w, *extra, data="good_data", **overrides):
    values = dict(task_name="MRPC", data_dir=w[data], vocab_file=w["vocab"], bert_config_file=w["config"],
                  init_checkpoint=w["ckpt"], output_dir=os.path.join(w["root"], "out_classifier"),
                  max_seq_length="16", do_train="true")
    values.update(overrides)
    return ("run_classifier", [f"--{k}={v}" for k, v in values.items() if v is not None] + list(extra))


def _squad(w, *extra, **overrides):
    values = dict(vocab_file=w["vocab"], bert_config_file=w["config"], init_checkpoint=w["ckpt"],
                  output_dir=os.path.join(w["root"], "out_squad"), max_seq_length="32", max_query_length="8",
                  do_predict="true",
                  predict_file=w["squad"])
    values.update(overrides)
    return ("run_squad", [f"--{k}={v}" for k, v in values.items() if v is not None] + list(extra))


def _extract(w, **overrides):
    values = dict(input_file=w["lines"], output_file=os.path.join(w["root"], "features.jsonl"),
                  vocab_file=w["vocab"], bert_config_file=w["config"], init_checkpoint=w["ckpt"],
                  max_seq_length="16", layers="-1,-2")
    values.update(overrides)
    return ("extract_features", [f"--{k}={v}" for k, v in values.items()])


def _pretraining_data(w, **overrides):
    values = dict(input_file=w["corpus"], output_file=os.path.join(w["root"], "pretrain.tfrecord"),
                  vocab_file=w["vocab"], max_seq_length="16", dupe_factor="1")
    values.update(overrides)
    return ("create_pretraining_data", [f"--{k}={v}" for k, v in values.items()])


def _pretraining(w, **overrides):
    values = dict(input_file=w["corpus"], bert_config_file=w["config"], output_dir=os.path.join(w["root"], "pt"),
                  do_train="true", max_seq_length="16", num_train_steps="2", train_batch_size="2")
    values.update(overrides)
    return ("run_pretraining", [f"--{k}={v}" for k, v in values.items()])


# case id -> (command builder, substrings the error line must contain)
CASES = {
    "unknown_task": (lambda w: _classifier(w, task_name="nope"), ["Task not found: 'nope'", "--task_name"]),
    "short_tsv_row": (lambda w: _classifier(w, data="short_row"), ["short/train.tsv, line 3", "columns"]),
    "invalid_utf8_tsv_row": (lambda w: _classifier(w, data="bad_utf8"), ["utf8/train.tsv, line 3", "UTF-8"]),
    "unknown_label": (lambda w: _classifier(w, data="bad_label"), ["label/train.tsv, line 2", "label '7'"]),
    "vocab_larger_than_vocab_size": (lambda w: _classifier(w, vocab_file=w["big_vocab"]),
                                     ["big_vocab.txt has", "vocab_size="]),
    "missing_vocab": (lambda w: _classifier(w, vocab_file="/nonexistent/vocab.txt"),
                      ["vocabulary file (--vocab_file) /nonexistent/vocab.txt not found"]),
    "vocab_not_utf8": (lambda w: _classifier(w, vocab_file=w["bad_utf8_vocab"]),
                       ["bad_vocab.txt, line 3", "UTF-8"]),
    "missing_data_dir": (lambda w: _classifier(w, data_dir="/nonexistent/glue"),
                         ["data_dir /nonexistent/glue does not exist"]),
    "train_batch_size_0": (lambda w: _classifier(w, train_batch_size="0"), ["--train_batch_size=0 must be"]),
    "num_train_epochs_0": (lambda w: _classifier(w, num_train_epochs="0"), ["--num_train_epochs=0.0 must be"]),
    "warmup_proportion_2": (lambda w: _classifier(w, warmup_proportion="2"),
                            ["--warmup_proportion=2.0", "probability"]),
    "output_dir_is_a_file": (lambda w: _classifier(w, output_dir=w["text_file"]), ["a_file is a file"]),
    "init_checkpoint_missing": (lambda w: _classifier(w, init_checkpoint="/nonexistent/bert_model.ckpt"),
                                ["init_checkpoint /nonexistent/bert_model.ckpt not found"]),
    "config_not_json": (lambda w: _classifier(w, bert_config_file=w["broken_config"]),
                        ["broken_config.json is not valid JSON", "line 2, column 7"]),
    "config_lacks_key": (lambda w: _classifier(w, bert_config_file=w["keyless_config"]),
                         ["keyless_config.json", 'lacks "vocab_size"']),
    "config_unknown_activation": (lambda w: _classifier(w, bert_config_file=w["bad_act_config"]),
                                  ["bad_act_config.json", "swish2"]),
    "max_seq_length_beyond_positions": (lambda w: _classifier(w, max_seq_length="100"),
                                        ["--max_seq_length=100", "max_position_embeddings=64"]),
    "predict_without_checkpoint": (lambda w: _classifier(w, do_train=None, do_predict="true",
                                                         init_checkpoint=None,
                                                         output_dir=os.path.join(w["root"], "fresh")),
                                   ["needs trained weights", "--init_checkpoint"]),
    "required_flag_missing": (lambda w: _classifier(w, data_dir=None), ["--data_dir is required"]),
    "unexpected_positional_argument": (lambda w: _classifier(w, "stray"), ["unexpected argument 'stray'"]),
    "unknown_flag": (lambda w: _classifier(w, "--no_such_flag=1"), ["no_such_flag"]),
    "flag_not_a_number": (lambda w: _classifier(w, train_batch_size="many"), ["train_batch_size", "many"]),
    "accumulation_does_not_divide_batch": (
        lambda w: _classifier(w, train_batch_size="5", num_accumulation_steps="2"), ["5 examples", "2"]),
    "malformed_squad_json": (lambda w: _squad(w, predict_file=w["broken_squad"]),
                             ["broken_squad.json is not valid JSON", "line 3, column 19"]),
    "squad_file_missing": (lambda w: _squad(w, predict_file="/nonexistent/dev.json"),
                           ["/nonexistent/dev.json not found"]),
    "squad_doc_stride_0": (lambda w: _squad(w, doc_stride="0"), ["--doc_stride=0 must be"]),
    "squad_query_longer_than_sequence": (lambda w: _squad(w, max_query_length="40"),
                                         ["max_seq_length (32)", "max_query_length (40)"]),
    "layer_out_of_range": (lambda w: _extract(w, layers="-3"), ["--layers", "layer index -3 is out of range"]),
    "extract_output_folder_missing": (lambda w: _extract(w, output_file="/nonexistent/dir/features.jsonl"),
                                      ["/nonexistent/dir/features.jsonl (--output_file)", "does not exist"]),
    "extract_input_missing": (lambda w: _extract(w, input_file="/nonexistent/input.txt"),
                              ["input file not found: /nonexistent/input.txt"]),
    "extract_batch_size_0": (lambda w: _extract(w, batch_size="0"), ["--batch_size=0 must be"]),
    "empty_corpus": (lambda w: _pretraining_data(w, input_file=w["empty_corpus"]), ["no text found", "empty.txt"]),
    "masked_lm_prob_1.5": (lambda w: _pretraining_data(w, masked_lm_prob="1.5"),
                           ["--masked_lm_prob=1.5", "probability"]),
    "pretraining_output_folder_missing": (
        lambda w: _pretraining_data(w, output_file="/nonexistent/dir/out.tfrecord"), ["/nonexistent/dir"]),
    "pretraining_input_missing": (lambda w: _pretraining_data(w, input_file="/nonexistent/*.txt"),
                                  ["/nonexistent/*.txt", "matches no file"]),
    "run_pretraining_on_text_file": (lambda w: _pretraining(w), ["corpus.txt", "TFRecord"]),
    "convert_hf_without_safetensors": (
        lambda w: ("convert_hf_checkpoint", [f"--input_dir={w['hf_without_weights']}",
                                             f"--output_dir={os.path.join(w['root'], 'converted')}"]),
        ["model.safetensors"]),
    "evaluate_squad_no_shared_id": (lambda w: ("evaluate_squad", [w["squad"], w["other_predictions"]]),
                                    ["other_predictions.json shares no question id", "z9"]),
    "evaluate_squad_not_squad": (lambda w: ("evaluate_squad", [w["not_squad"], w["other_predictions"]]),
                                 ["not_squad.json is not a SQuAD data file"]),
    "evaluate_squad_missing_argument": (lambda w: ("evaluate_squad", [w["squad"]]),
                                        ["the following arguments are required: pred.json"]),
}


@pytest.fixture(scope="module")
def results(work):
    """Runs every case (three processes at a time) and returns their CompletedProcess by case id. Each case writes
    into a folder of its own: runs at the same time into one output_dir would find it in use (its lock)."""

    def case_work(case):
        root = os.path.join(work["root"], "cases", case)
        os.makedirs(root)
        return dict(work, root=root)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {case: pool.submit(run_script, *build(case_work(case))) for case, (build, _) in CASES.items()}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_ends_in_one_error_line(case, results):
    completed = results[case]
    line = last_line(completed.stderr)
    assert completed.returncode == 1, (completed.returncode, completed.stderr[-2000:])
    assert "Traceback" not in completed.stderr + completed.stdout, completed.stderr[-3000:]
    assert line.startswith("error: "), completed.stderr[-2000:]
    for expected in CASES[case][1]:
        assert expected in line, line
    assert sum(1 for text in completed.stderr.splitlines() if text.startswith("error: ")) == 1
