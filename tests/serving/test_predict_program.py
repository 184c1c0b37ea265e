"""The predict program as a user runs it: texts in (TSV or JSON lines, a file or standard input), JSON lines of
run_classifier's probabilities out; bad model paths and malformed lines end in one `error:` line."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import SCRIPTS, last_line

from bert.common.errors import UserError
from bert.ner import metrics as ner_metrics
from bert.serving.json_lines import TextInput, read_text_inputs


def predict(args, stdin=None):
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, "predict.py"), *args], input=stdin,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))


def probabilities(lines):
    return np.array([[record["probabilities"][label] for label in ("0", "1")]
                     for record in map(json.loads, lines)])


@pytest.mark.slow
@pytest.mark.parametrize("options", [[], ["--fast_kernels"]])
def test_tsv_on_standard_input_gives_run_classifiers_probabilities(trained_run, options):
    tsv = "".join(f"{a}\t{b}\n" for a, b in zip(trained_run["texts_a"], trained_run["texts_b"]))
    completed = predict([f"--model_dir={trained_run['output_dir']}", *options], stdin=tsv)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    assert [json.loads(line)["line"] for line in lines] == list(range(1, len(trained_run["texts_a"]) + 1))
    np.testing.assert_allclose(probabilities(lines), trained_run["expected"], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_json_lines_from_a_file_to_a_file_through_the_saved_model(trained_run, tmp_path):
    inputs = tmp_path / "pairs.jsonl"
    inputs.write_text("".join(json.dumps({"id": f"q{i}", "text_a": a, "text_b": b}) + "\n\n"
                              for i, (a, b) in enumerate(zip(trained_run["texts_a"], trained_run["texts_b"]))))
    output = tmp_path / "predictions.jsonl"
    completed = predict([f"--model_dir={trained_run['export_dir']}", f"--input_file={inputs}",
                         f"--output_file={output}", "--batch_size=3"])
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = output.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [f"q{i}" for i in range(len(lines))]
    assert [json.loads(line)["line"] for line in lines] == list(range(1, 2 * len(lines), 2))  # blank lines skipped
    np.testing.assert_allclose(probabilities(lines), trained_run["expected"], atol=1e-5, rtol=0)
    assert sorted(os.listdir(tmp_path)) == ["pairs.jsonl", "predictions.jsonl"]  # no temporary file left


@pytest.mark.slow
def test_questions_and_texts_to_tag_give_answers_and_entities(trained_squad_run, trained_ner_run):
    ids, questions, contexts = zip(*trained_squad_run["questions"][:4])
    tsv = "".join(f"{question}\t{context}\n" for question, context in zip(questions, contexts))
    completed = predict([f"--model_dir={trained_squad_run['output_dir']}"], stdin=tsv)
    assert completed.returncode == 0, completed.stderr[-3000:]
    answers = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [a["text"] for a in answers] == [trained_squad_run["predictions"][qid] for qid in ids]
    assert all(context[a["start"]:a["end"]] == a["text"] for a, context in zip(answers, contexts))

    text = " ".join(trained_ner_run["words"][0])
    completed = predict([f"--model_dir={trained_ner_run['export_dir']}"], stdin=json.dumps({"text": text}) + "\n")
    assert completed.returncode == 0, completed.stderr[-3000:]
    entities = json.loads(completed.stdout)["entities"]
    assert all(text[e["start"]:e["end"]] == e["text"] for e in entities)
    assert len(entities) == len(ner_metrics.spans(trained_ner_run["predicted_tags"][0]))

    completed = predict([f"--model_dir={trained_squad_run['output_dir']}"], stdin="who is it?\n")
    assert completed.returncode == 1 and last_line(completed.stderr) == (
        'error: standard input, line 1: a question needs its context (question<TAB>context, or "context" in a '
        "JSON line)")


@pytest.mark.slow
@pytest.mark.parametrize("args,stdin,message", [
    (["--model_dir={tmp}/nowhere"], "a\n", "error: model path {tmp}/nowhere is not a folder: give the output_dir of "
                                           "a fine-tuning run, or a SavedModel (or the --export_dir holding them)"),
    (["--model_dir={run}"], "a\tb\nx\ty\tz\n", "error: standard input, line 2: 3 tab-separated columns; a TSV line "
                                               "is text_a, or text_a<TAB>text_b (or use JSON lines: "
                                               "--input_format=jsonl)"),
    (["--model_dir={run}", "--input_format=jsonl"], '{"text_a": "a"}\n{"text_a": "b",}\n',
     "error: standard input, line 2: not valid JSON ({json_reason} at column {column})"),
    (["--model_dir={run}", "--input_file={tmp}/missing.tsv"], None, "error: --input_file={tmp}/missing.tsv does not "
                                                                    "exist"),
    (["--model_dir={run}", "--output_file={tmp}/no/such/folder/out.jsonl"], "a\n",
     "error: --output_file={tmp}/no/such/folder/out.jsonl: its folder {tmp}/no/such/folder does not exist"),
    (["--model_dir={saved}", "--fast_kernels"], "a\n",
     "error: fast_kernels builds the model from a checkpoint, and {saved} is a SavedModel (its graph is fixed): "
     "load the run's output_dir, or export with --fast_kernels"),
])
def test_bad_input_ends_in_one_line(trained_run, tmp_path, args, stdin, message):
    values = dict(tmp=tmp_path, run=trained_run["output_dir"], saved=trained_run["saved_model"])
    completed = predict([arg.format(**values) for arg in args], stdin=stdin)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    # Python's own words for a JSON error differ between versions: the line names them and the column.
    pattern = re.escape(message.format(json_reason="<reason>", column="<column>", **values))
    pattern = pattern.replace("<reason>", "[A-Z][^()]+").replace("<column>", "1[56]")
    assert re.fullmatch(pattern, last_line(completed.stderr)), last_line(completed.stderr)


def test_input_lines_are_read_as_tsv_or_json_lines():
    assert list(read_text_inputs(["a b\tc d\n", "\n", "e\n"])) == [TextInput(1, "a b", "c d"), TextInput(3, "e")]
    assert list(read_text_inputs(['{"text": "a", "id": 7}\n', '{"text_a": "b", "text_b": "c"}'])) == [
        TextInput(1, "a", None, 7), TextInput(2, "b", "c")]
    assert list(read_text_inputs(['{"question": "who?", "context": "me"}'])) == [TextInput(1, "who?", "me")]
    with pytest.raises(UserError, match=r"in.tsv, line 1: needs a string \"text_a\""):
        list(read_text_inputs(['{"text_b": "x"}'], "jsonl", "in.tsv"))
    with pytest.raises(UserError, match="line 1: a JSON line must be an object"):
        list(read_text_inputs(["[1, 2]"], "jsonl"))
