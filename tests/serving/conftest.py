"""Models fine-tuned once for the serving tests: a classifier, a SQuAD 2.0 reader and a NER tagger."""

import json

import numpy as np
import pytest
from task_data import squad_options, tiny_options, write_mrpc_like, write_ner_data, write_squad_data

from bert.classifier import data as classifier_data
from bert.classifier import job as classifier_run
from bert.ner import job as ner_run
from bert.runtime.options import RunSettings
from bert.squad import job as squad_run


@pytest.fixture(scope="session")
def trained_run(tiny_model_dir, tmp_path_factory):
    """A classifier fine-tuned on MRPC-format data, its test_results.tsv and a SavedModel export."""
    root = tmp_path_factory.mktemp("predictor")
    data_dir = write_mrpc_like(root / "data", num_test=23)
    output_dir, export_dir = root / "out", root / "export"
    results = classifier_run.run(tiny_options(tiny_model_dir, data_dir, output_dir, do_train=True, do_predict=True,
                                              num_train_epochs=3.0, export_dir=str(export_dir)))
    examples = classifier_data.MrpcProcessor().get_test_examples(data_dir)
    expected = np.loadtxt(results.predictions_file, delimiter="\t", ndmin=2)
    return dict(output_dir=str(output_dir), export_dir=str(export_dir), saved_model=results.saved_model_dir,
                texts_a=[e.text_a for e in examples], texts_b=[e.text_b for e in examples], expected=expected)


@pytest.fixture(scope="session")
def trained_squad_run(tiny_model_dir, tmp_path_factory):
    """A SQuAD 2.0 model fine-tuned on synthetic paragraphs, the predict file's questions and run_squad's answers.

    Short windows (max_seq_length 48, doc_stride 16) cut every 30-word context into several."""
    root = tmp_path_factory.mktemp("squad_predictor")
    train_file = write_squad_data(root / "train.json", num_paragraphs=8, seed=0)
    predict_file = write_squad_data(root / "dev.json", num_paragraphs=3, seed=1)
    output_dir, export_dir = root / "out", root / "export"
    squad_run.run(squad_options(
        tiny_model_dir, output_dir, init_checkpoint=f"{tiny_model_dir}/bert_model.ckpt", do_train=True,
        do_predict=True, train_file=train_file, predict_file=predict_file, doc_stride=16, num_train_epochs=3.0,
        learning_rate=1e-3, version_2_with_negative=True, export_dir=str(export_dir), n_best_size=5,
        run=RunSettings(output_dir=str(output_dir), seed=1)))
    paragraphs = [paragraph for article in json.load(open(predict_file))["data"]
                  for paragraph in article["paragraphs"]]
    questions = [(qa["id"], qa["question"], paragraph["context"])
                 for paragraph in paragraphs for qa in paragraph["qas"]]
    outputs = {name: json.load(open(output_dir / f"{name}.json"))
               for name in ("predictions", "nbest_predictions", "null_odds")}
    return dict(output_dir=str(output_dir), export_dir=str(export_dir), questions=questions,
                predictions=outputs["predictions"], nbest=outputs["nbest_predictions"], null_odds=outputs["null_odds"])


@pytest.fixture(scope="session")
def trained_ner_run(tiny_model_dir, tmp_path_factory):
    """A NER tagger fine-tuned on toy CoNLL data (a 40-word test sentence spans several windows of 16) and the
    tags run_ner predicted for the test sentences."""
    root = tmp_path_factory.mktemp("ner_predictor")
    data_dir, _ = write_ner_data(root / "data", num_train=40)
    output_dir, export_dir = root / "out", root / "export"
    results = ner_run.run(ner_run.NerOptions(
        data_dir=data_dir, bert_config_file=f"{tiny_model_dir}/bert_config.json",
        vocab_file=f"{tiny_model_dir}/vocab.txt", output_dir=str(output_dir),
        init_checkpoint=f"{tiny_model_dir}/bert_model.ckpt", max_seq_length=16, doc_stride=5, train_batch_size=8,
        num_train_epochs=5.0, learning_rate=2e-3, do_train=True, do_predict=True, export_dir=str(export_dir),
        run=RunSettings(output_dir=str(output_dir), seed=1)))
    sentences = [[line.split("\t") for line in block.splitlines()]
                 for block in open(results.predictions_file).read().strip().split("\n\n")]
    return dict(output_dir=str(output_dir), export_dir=str(export_dir),
                words=[[columns[0] for columns in sentence] for sentence in sentences],
                predicted_tags=[[columns[-1] for columns in sentence] for sentence in sentences])
