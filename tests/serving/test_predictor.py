"""The warm predictor: loaded from a run's output_dir or its SavedModel, it gives the probabilities run_classifier
wrote for the same texts, from any thread, and says clearly what is missing from a folder it cannot load."""

import concurrent.futures
import json
import os
import shutil

import numpy as np
import pytest
from task_data import tiny_options, write_mrpc_like

from bert import modeling
from bert.classifier import job as classifier_run
from bert.common.errors import UserError
from bert.features.extraction import FeatureExtractor, InputExample
from bert.runtime.performance import PerformanceSettings
from bert.runtime.task_file import TASK_FILE, VOCAB_FILE
from bert.ner import metrics as ner_metrics
from bert.serving.predictor import Entity, Predictor

pytestmark = pytest.mark.slow  # each needs a model fine-tuned for it (tests/serving/conftest.py)


def probabilities(classifications):
    return np.array([[c.probabilities[label] for label in ("0", "1")] for c in classifications])


@pytest.mark.parametrize("source", ["output_dir", "export_dir", "saved_model"])
def test_probabilities_equal_run_classifiers_test_results(trained_run, source):
    with Predictor.load(trained_run[source]) as predictor:
        results = predictor.classify(trained_run["texts_a"], trained_run["texts_b"], batch_size=5)
    np.testing.assert_allclose(probabilities(results), trained_run["expected"], atol=1e-5, rtol=0)
    assert [r.label for r in results] == [str(int(np.argmax(row))) for row in trained_run["expected"]]


def test_fast_kernels_give_the_same_probabilities_from_a_checkpoint_only(trained_run):
    with Predictor.load(trained_run["output_dir"], fast_kernels=True) as predictor:
        results = predictor.classify(trained_run["texts_a"], trained_run["texts_b"], batch_size=5)
        vectors = predictor.embed(trained_run["texts_a"][:3], pooling="cls")
        graphs = (predictor._model.graph, predictor._encoder().graph)
    for graph in graphs:
        assert any("/Gelu/" in op.name for op in graph.get_operations())
        assert not [op.name for op in graph.get_operations() if op.type in ("VarHandleOp", "VariableV2")]
    np.testing.assert_allclose(probabilities(results), trained_run["expected"], atol=1e-5, rtol=0)
    with Predictor.load(trained_run["output_dir"]) as predictor:
        np.testing.assert_allclose(vectors, predictor.embed(trained_run["texts_a"][:3], pooling="cls"), atol=1e-5,
                                   rtol=0)
    with pytest.raises(UserError, match="fast_kernels builds the model from a checkpoint, and .* is a SavedModel"):
        Predictor.load(trained_run["export_dir"], fast_kernels=True)


def test_a_run_with_fast_kernels_exports_the_fused_graph(trained_run, tiny_model_dir, tmp_path):
    output_dir = tmp_path / "out"
    shutil.copytree(trained_run["output_dir"], output_dir)
    options = tiny_options(tiny_model_dir, write_mrpc_like(tmp_path / "data"), output_dir,
                           export_dir=str(tmp_path / "export"))
    options.run.performance = PerformanceSettings(fast_kernels=True)
    saved_model = classifier_run.run(options).saved_model_dir
    with Predictor.load(saved_model) as predictor:
        assert any("/Gelu/" in op.name for op in predictor._model.graph.get_operations())
        results = predictor.classify(trained_run["texts_a"], trained_run["texts_b"], batch_size=5)
    np.testing.assert_allclose(probabilities(results), trained_run["expected"], atol=1e-5, rtol=0)


def test_the_run_saved_what_loading_needs_beside_its_checkpoint_and_saved_model(trained_run, tiny_model_dir):
    for folder in (trained_run["output_dir"], os.path.join(trained_run["saved_model"], "assets.extra")):
        content = json.load(open(os.path.join(folder, TASK_FILE)))
        assert content["task"] == "classifier" and content["task_name"] == "mrpc"
        assert content["labels"] == ["0", "1"] and content["max_seq_length"] == 32
        assert content["do_lower_case"] is True and content["bert_config"]["hidden_size"] == 32
        assert open(os.path.join(folder, VOCAB_FILE)).read() == open(f"{tiny_model_dir}/vocab.txt").read()


def test_calls_from_several_threads_give_the_single_threaded_results(trained_run):
    with Predictor.load(trained_run["output_dir"]) as predictor:
        pairs = list(zip(trained_run["texts_a"], trained_run["texts_b"]))
        alone = [predictor.classify([a], [b])[0] for a, b in pairs]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda pair: predictor.classify([pair[0]], [pair[1]])[0], pairs * 4))
    np.testing.assert_allclose(probabilities(together), probabilities(alone * 4), atol=1e-6, rtol=0)


def test_single_texts_and_empty_lists(trained_run):
    with Predictor.load(trained_run["output_dir"]) as predictor:
        assert predictor.classify([]) == []
        result = predictor.classify(["the cat sat on the mat"])[0]
        assert result.label in ("0", "1") and sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert predictor.classify("the cat sat on the mat") == result
        assert predictor.classify(trained_run["texts_a"][0], trained_run["texts_b"][0]) == predictor.classify(
            trained_run["texts_a"][:1], trained_run["texts_b"][:1])[0]
        with pytest.raises(TypeError, match="texts_b is one string but texts_a is not"):
            predictor.classify(["the cat"], "the dog")
        with pytest.raises(ValueError, match="2 texts_a but 1 texts_b"):
            predictor.classify(["a", "b"], ["c"])
        with pytest.raises(UserError, match=r"answer\(\) needs a squad model, but .* is a classifier model"):
            predictor.answer("who?", "the cat")


@pytest.mark.parametrize("source", ["output_dir", "export_dir"])
def test_answers_equal_run_squads_predictions_with_their_place_in_the_context(trained_squad_run, source):
    ids, questions, contexts = zip(*trained_squad_run["questions"])
    with Predictor.load(trained_squad_run[source]) as predictor:
        answers = predictor.answer(list(questions), list(contexts), batch_size=4)
    assert [answer.text for answer in answers] == [trained_squad_run["predictions"][qid] for qid in ids]
    assert any(answer.text for answer in answers)
    for qid, context, answer in zip(ids, contexts, answers):
        assert context[answer.start:answer.end] == answer.text
        assert answer.null_score_diff == pytest.approx(trained_squad_run["null_odds"][qid], abs=1e-5)
        entry = next(e for e in trained_squad_run["nbest"][qid] if e["text"] == answer.text)
        assert answer.probability == pytest.approx(entry["probability"], abs=1e-5)
        assert answer.score == pytest.approx(entry["start_logit"] + entry["end_logit"], abs=1e-5)


def test_no_answer_is_an_empty_text_at_the_start(trained_squad_run):
    _, question, context = trained_squad_run["questions"][0]
    with Predictor.load(trained_squad_run["output_dir"]) as predictor:
        found = predictor.answer(question, context)
        predictor.description.settings["null_score_diff_threshold"] = -1e9  # any null score wins
        none = predictor.answer(question, context)
    assert (none.text, none.start, none.end) == ("", 0, 0)
    assert none.null_score_diff == pytest.approx(found.null_score_diff, abs=1e-6)


def test_an_answer_keeps_the_contexts_own_spacing_and_case(trained_squad_run):
    """Offsets point into the context as given, whatever whitespace separates its words."""
    _, question, context = trained_squad_run["questions"][0]
    spaced = context.replace(" ", " \t ", 3).replace(" ", "  ")
    with Predictor.load(trained_squad_run["output_dir"]) as predictor:
        plain, answer = predictor.answer([question, question], [context, spaced])
    assert plain.text, "the test needs a question the model answers"
    assert " ".join(spaced[answer.start:answer.end].split()) == plain.text


def test_folders_it_cannot_load_are_named(trained_run, tmp_path):
    with pytest.raises(UserError, match=f"model path {tmp_path}/nowhere is not a folder"):
        Predictor.load(str(tmp_path / "nowhere"))
    without_task_file = tmp_path / "old_run"
    shutil.copytree(trained_run["output_dir"], without_task_file)
    os.remove(without_task_file / TASK_FILE)
    with pytest.raises(UserError, match=f"{without_task_file} holds no {TASK_FILE}: give the output_dir of a "
                                        "fine-tuning run made by this version"):
        Predictor.load(str(without_task_file))
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    shutil.copy(os.path.join(trained_run["output_dir"], TASK_FILE), untrained)
    with pytest.raises(UserError, match=f"model path {untrained} holds no checkpoint and no SavedModel"):
        Predictor.load(str(untrained))


@pytest.mark.parametrize("source", ["output_dir", "export_dir"])
def test_entities_are_run_ners_predicted_chunks_with_their_place_in_the_text(trained_ner_run, source):
    texts = [" ".join(words) for words in trained_ner_run["words"]]
    expected = []
    for text, words, tags in zip(texts, trained_ner_run["words"], trained_ner_run["predicted_tags"]):
        starts = [len(" ".join(words[:index])) + (1 if index else 0) for index in range(len(words))]
        ends = [start + len(word) for start, word in zip(starts, words)]
        expected.append([Entity(text[starts[first]:ends[last]], entity_type, starts[first], ends[last])
                         for entity_type, first, last in ner_metrics.spans(tags)])
    assert max(len(words) for words in trained_ner_run["words"]) == 40  # one text spans several windows
    with Predictor.load(trained_ner_run[source]) as predictor:
        entities = predictor.tag(texts, batch_size=3)
        assert predictor.tag(texts[0]) == entities[0]
    assert entities == expected
    assert sum(len(found) for found in entities) > 5


def test_vectors_equal_extract_features_on_the_runs_checkpoint(trained_run):
    output_dir = trained_run["output_dir"]
    with Predictor.load(output_dir) as predictor:
        config = modeling.BertConfig.from_dict(predictor.description.bert_config)
        extractor = FeatureExtractor(config, predictor.source, os.path.join(output_dir, VOCAB_FILE), layers="-1,-2",
                                     max_seq_length=32, batch_size=4)
        examples = [InputExample(i, a, b)
                    for i, (a, b) in enumerate(zip(trained_run["texts_a"], trained_run["texts_b"]))]
        expected = [values for _, values in extractor.run(extractor.convert(examples))]
        vectors = predictor.embed(trained_run["texts_a"], trained_run["texts_b"], layers=[-1, -2], batch_size=5)
        pooled = predictor.embed(trained_run["texts_a"][0], trained_run["texts_b"][0], layers="-1", pooling="cls")
        mean = predictor.embed(trained_run["texts_a"][:1], pooling="mean")[0]
        single = predictor.embed(trained_run["texts_a"][0])
    assert [v.shape for v in vectors] == [e.shape for e in expected] and vectors[0].shape[0] == 2
    for ours, theirs in zip(vectors, expected):
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(pooled, expected[0][:1, 0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(mean, single.mean(axis=1), atol=1e-6, rtol=0)
    assert mean.shape == (1, 32)


def test_embed_needs_a_checkpoint_not_a_saved_model(trained_run):
    with Predictor.load(trained_run["saved_model"]) as predictor:
        with pytest.raises(UserError, match="embed\\(\\) needs a checkpoint, and .* is a SavedModel"):
            predictor.embed("the cat")
        with pytest.raises(ValueError, match="pooling must be one of"):
            predictor.embed("the cat", pooling="max")
