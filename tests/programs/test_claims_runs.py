"""README claims about the programs' runs that other tests did not check: learning on learnable data, the resume
warning, each task's metrics, TPU padding dropped from the outputs, the checkpoint-casing check in every script
that takes a checkpoint, and non-local paths through tf.io.gfile (the registered ram:// filesystem takes the same
code path as gs://)."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import REPO_ROOT, shared_path
from task_data import WORDS, tiny_options, write_mrpc_like

from bert import tokenization
from bert.classifier import data as classifier_data
from bert.classifier import job as classifier_run
from bert.features import extraction as feature_extraction
from bert.pretraining import data as pretraining_data
from bert.runtime.outputs import read_key_value_results

ENV = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")


def write_keyword_task(folder, num_train=160, num_dev=40, seed=0):
    """MRPC-format files a tiny random model learns in 200 steps: label 1 when sentence a holds "dog" (at 100
    steps it was still at chance)."""
    rng = np.random.RandomState(seed)
    others = [w for w in WORDS if w != "dog"]
    os.makedirs(folder, exist_ok=True)
    for name, count in (("train.tsv", num_train), ("dev.tsv", num_dev), ("test.tsv", 4)):
        with open(os.path.join(folder, name), "w") as f:
            f.write("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
            for i in range(count):
                words = list(rng.choice(others, size=rng.randint(3, 8)))
                label = i % 2
                if label:
                    words.insert(rng.randint(len(words) + 1), "dog")
                f.write(f"{label}\t{i}\t{i}\t{' '.join(words)}\t{' '.join(rng.choice(others, size=4))}\n")
    return str(folder)


@pytest.mark.slow
def test_tiny_fine_tuning_learns_learnable_data_and_resuming_says_so(tiny_model_dir, tmp_path):
    data_dir = write_keyword_task(tmp_path / "data")
    out = tmp_path / "out"
    options = tiny_options(tiny_model_dir, data_dir, out, do_train=True, do_eval=True, num_train_epochs=10.0,
                           train_batch_size=8, learning_rate=3e-3, max_seq_length=16)
    classifier_run.run(options)  # 200 steps
    accuracy = float(read_key_value_results(str(out / "eval_results.txt"))["eval_accuracy"])
    assert accuracy >= 0.9, f"eval_accuracy {accuracy}: the model did not learn (chance is 0.5)"

    # Running again on the same output_dir resumes, and the script's log says so in README's words.
    latest = tf.train.latest_checkpoint(str(out))
    command = [sys.executable, "-m", "bert.run_classifier", "--task_name=MRPC", "--do_train=true",
               f"--data_dir={data_dir}", f"--vocab_file={tiny_model_dir}/vocab.txt",
               f"--bert_config_file={tiny_model_dir}/bert_config.json",
               f"--init_checkpoint={tiny_model_dir}/bert_model.ckpt", "--max_seq_length=16",
               "--train_batch_size=8", "--num_train_epochs=10.4", f"--output_dir={out}"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=ENV, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (f"output_dir {out} already holds checkpoint {latest}: training resumes from it (init_checkpoint is "
            f"ignored); use a new output_dir to start afresh") in completed.stderr
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-208")


# ----------------------------------------------------------------------------------------------------------------
# Task -> metrics, through an evaluation run
# ----------------------------------------------------------------------------------------------------------------


def write_task_dev_file(task, folder):
    """Six dev rows in the layout of the original's processor for `task`; the file name is the task's."""
    os.makedirs(folder, exist_ok=True)
    sentences = ["the dog was good", "a cat is big", "the man said no", "an old house", "the new car", "a tree"]
    if task == "cola":  # no header: source, label, original label, sentence
        name, rows = "dev.tsv", [f"src\t{i % 2}\t*\t{s}" for i, s in enumerate(sentences)]
    elif task == "qqp":  # id, qid1, qid2, question1, question2, is_duplicate
        name = "dev.tsv"
        rows = ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"] + [
            f"{i}\t{i}\t{i + 9}\t{s}\t{s}\t{i % 2}" for i, s in enumerate(sentences)]
    else:  # mnli-mm: index ... sentence1 (8), sentence2 (9), ..., gold label (last)
        name = "dev_mismatched.tsv"
        labels = ["contradiction", "entailment", "neutral"]
        rows = ["\t".join(["index"] + [f"c{k}" for k in range(1, 8)] + ["sentence1", "sentence2", "gold_label"])]
        rows += ["\t".join([str(i)] + ["x"] * 7 + [s, s, labels[i % 3]]) for i, s in enumerate(sentences)]
    with open(os.path.join(folder, name), "w") as f:
        f.write("\n".join(rows) + "\n")
    return str(folder)


@pytest.mark.parametrize("task, expected_keys", [
    ("cola", {"eval_accuracy", "eval_loss", "eval_matthews_corr"}),
    ("qqp", {"eval_accuracy", "eval_loss", "eval_f1"}),
    ("mnli-mm", {"eval_accuracy", "eval_loss"}),  # reads dev_mismatched.tsv: the only dev file written
])
def test_each_task_reports_its_metrics(tiny_model_dir, tmp_path, task, expected_keys):
    data_dir = write_task_dev_file(task, tmp_path / "data")
    out = tmp_path / "out"
    classifier_run.run(tiny_options(tiny_model_dir, data_dir, out, task_name=task, do_eval=True))
    written = read_key_value_results(str(out / "eval_results.txt"))
    assert set(written) - {"global_step", "loss"} == expected_keys


# ----------------------------------------------------------------------------------------------------------------
# TPU padding: eval and predict sets padded to whole batches, padding weighs nothing and is dropped
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tpu_padding_examples_weigh_nothing_and_are_dropped_from_test_results(tiny_model_dir, tmp_path,
                                                                              monkeypatch):
    data_dir = write_mrpc_like(tmp_path / "data", num_dev=6, num_test=7)  # batches of 4: 2 and 1 padding
    settings = dict(do_eval=True, do_predict=True, eval_batch_size=4, predict_batch_size=4)
    classifier_run.run(tiny_options(tiny_model_dir, data_dir, tmp_path / "plain", **settings))
    padded_sizes = []

    def pad_as_on_tpu(phase, examples, batch_size):  # what use_tpu=True does, without needing a TPU
        padded = classifier_data.pad_for_tpu(examples, batch_size)
        padded_sizes.append(len(padded))
        return padded

    monkeypatch.setattr(classifier_run._Phase, "_padded", pad_as_on_tpu)
    classifier_run.run(tiny_options(tiny_model_dir, data_dir, tmp_path / "padded", **settings))
    assert padded_sizes == [8, 8]
    plain = (tmp_path / "plain" / "test_results.tsv").read_text()
    padded = (tmp_path / "padded" / "test_results.tsv").read_text()
    assert len(padded.splitlines()) == 7
    np.testing.assert_allclose(np.loadtxt(padded.splitlines()), np.loadtxt(plain.splitlines()), atol=1e-6)
    plain_eval = read_key_value_results(str(tmp_path / "plain" / "eval_results.txt"))
    padded_eval = read_key_value_results(str(tmp_path / "padded" / "eval_results.txt"))
    for key in ("eval_accuracy", "eval_f1", "eval_loss"):
        np.testing.assert_allclose(float(padded_eval[key]), float(plain_eval[key]), atol=1e-6, rtol=0,
                                   err_msg=key)


# ----------------------------------------------------------------------------------------------------------------
# do_lower_case against the checkpoint's name, in each script that takes a checkpoint
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uncased_named_model(tiny_model_dir, tmp_path_factory):
    """The tiny model in a folder named like Google's BERT-Base uncased release."""
    folder = tmp_path_factory.mktemp("release") / "uncased_L-12_H-768_A-12"
    shutil.copytree(tiny_model_dir, folder)
    return str(folder)


def program_flags(program, model, tmp_path):
    data = tmp_path / "data"
    if program == "run_classifier":
        return ["--task_name=MRPC", f"--data_dir={write_mrpc_like(data)}", "--do_train=true",
                f"--output_dir={tmp_path / 'out'}", "--max_seq_length=16"]
    if program == "run_squad":
        data.mkdir()
        (data / "train.json").write_text('{"version": "1.1", "data": []}')
        return [f"--train_file={data / 'train.json'}", "--do_train=true", f"--output_dir={tmp_path / 'out'}",
                "--max_seq_length=32", "--max_query_length=8", "--doc_stride=8"]
    (tmp_path / "in.txt").write_text("the dog\n")
    return [f"--input_file={tmp_path / 'in.txt'}", f"--output_file={tmp_path / 'out.jsonl'}",
            "--max_seq_length=16", "--layers=-1"]


@pytest.mark.slow
@pytest.mark.parametrize("program", ["run_classifier", "run_squad", "extract_features"])
def test_each_script_refuses_do_lower_case_contradicting_the_checkpoint_name(uncased_named_model, tmp_path,
                                                                             program):
    checkpoint = os.path.join(uncased_named_model, "bert_model.ckpt")
    command = [sys.executable, "-m", f"bert.{program}", f"--vocab_file={uncased_named_model}/vocab.txt",
               f"--bert_config_file={uncased_named_model}/bert_config.json", f"--init_checkpoint={checkpoint}",
               "--do_lower_case=False", *program_flags(program, uncased_named_model, tmp_path)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=ENV, cwd=REPO_ROOT)
    assert completed.returncode != 0
    assert (f"`--do_lower_case=False` does not match `--init_checkpoint={checkpoint}`: `uncased_L-12_H-768_A-12` "
            f"is a lowercased (uncased) model, so pass `--do_lower_case=True`") in completed.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.jsonl").exists()  # refused before any work


# ----------------------------------------------------------------------------------------------------------------
# Non-local paths: every file through tf.io.gfile (ram:// is registered in-process, like gs:// with GCS)
# ----------------------------------------------------------------------------------------------------------------


# ram:// counts any path that prefixes a file as a directory (bert_model.ckpt prefixes bert_model.ckpt.index),
# which gs:// does not; so these tests name the checkpoint by its directory, which init_checkpoint also accepts.


def copy_to_ram(local_folder, ram_folder):
    tf.io.gfile.makedirs(ram_folder)
    for name in os.listdir(local_folder):
        tf.io.gfile.copy(os.path.join(local_folder, name), f"{ram_folder}/{name}", overwrite=True)
    return ram_folder


@pytest.mark.slow
def test_classifier_reads_and_writes_ram_paths(tiny_model_dir, tmp_path):
    data_dir = copy_to_ram(write_mrpc_like(tmp_path / "data", num_train=16), "ram://claims/classifier/data")
    model_dir = copy_to_ram(tiny_model_dir, "ram://claims/classifier/model")
    out = "ram://claims/classifier/out"
    classifier_run.run(tiny_options(model_dir, data_dir, out, init_checkpoint=model_dir, do_train=True,
                                    do_eval=True, do_predict=True))
    for name in ("train.tf_record", "eval_results.txt", "test_results.tsv", "checkpoint"):
        assert tf.io.gfile.exists(f"{out}/{name}"), name
    assert not os.path.exists("ram:")  # nothing went to a local folder of that name
    assert len(tf.io.gfile.GFile(f"{out}/test_results.tsv").read().splitlines()) == 7


def test_extract_features_and_pretraining_data_read_and_write_ram_paths(tiny_model_dir, tmp_path):
    model_dir = copy_to_ram(tiny_model_dir, "ram://claims/features/model")
    with tf.io.gfile.GFile("ram://claims/features/in.txt", "w") as f:
        f.write("the dog\na cat ||| the man\n")
    extractor = feature_extraction.FeatureExtractor(f"{model_dir}/bert_config.json", model_dir,
                                                    f"{model_dir}/vocab.txt", max_seq_length=16)
    assert feature_extraction.write_features_file(extractor, "ram://claims/features/in.txt",
                                                  "ram://claims/features/out.jsonl") == 2
    assert len(tf.io.gfile.GFile("ram://claims/features/out.jsonl").read().splitlines()) == 2

    corpus = "ram://claims/pretraining/corpus.txt"
    tf.io.gfile.makedirs("ram://claims/pretraining")
    tf.io.gfile.copy(shared_path("data", "sample_text.txt"), corpus, overwrite=True)
    output = "ram://claims/pretraining/examples.tfrecord"
    tokenizer = tokenization.FullTokenizer(f"{model_dir}/vocab.txt", do_lower_case=True)
    options = pretraining_data.DataOptions(max_seq_length=32, max_predictions_per_seq=5, random_seed=1,
                                           dupe_factor=1, masked_lm_prob=0.15, short_seq_prob=0.1,
                                           do_whole_word_mask=False)
    written = pretraining_data.create_pretraining_data([corpus], [output], tokenizer, options)
    assert written > 0
    assert sum(1 for _ in tf.data.TFRecordDataset(output)) == written
