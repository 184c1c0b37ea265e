"""Synthetic task data, options and command lines for tiny end-to-end runs, and the comparison with the stored
SQuAD goldens: what test files in several folders share (fixtures are in conftest.py, paths in helpers.py)."""

import json
import os
import sys

import numpy as np
from helpers import REPO_ROOT

from bert.classifier import job as classifier_run
from bert.runtime.options import RunSettings
from bert.squad import job as squad_run

WORDS = "the a dog cat man woman house car city river tree book good bad big small new old".split()


def write_mrpc_like(folder, num_train=48, num_dev=12, num_test=7, seed=0):
    """Synthetic MRPC-format files: label 1 when both sentences are equal, which a model can learn."""
    rng = np.random.RandomState(seed)
    os.makedirs(folder, exist_ok=True)
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"

    def sentence():
        return " ".join(rng.choice(WORDS, size=rng.randint(3, 9)))

    for name, count in (("train.tsv", num_train), ("dev.tsv", num_dev), ("test.tsv", num_test)):
        with open(os.path.join(folder, name), "w") as f:
            f.write(header)
            for i in range(count):
                a = sentence()
                label = i % 2
                b = a if label else sentence()
                f.write(f"{label}\t{i}\t{i + 1000}\t{a}\t{b}\n")
    return str(folder)


def tiny_options(model_dir, data_dir, output_dir, **overrides):
    values = dict(task_name="mrpc", data_dir=data_dir, bert_config_file=os.path.join(model_dir, "bert_config.json"),
                  vocab_file=os.path.join(model_dir, "vocab.txt"), output_dir=str(output_dir),
                  init_checkpoint=os.path.join(model_dir, "bert_model.ckpt"), max_seq_length=32,
                  train_batch_size=8, eval_batch_size=5, predict_batch_size=4, num_train_epochs=1.0,
                  learning_rate=1e-3)
    values.update(overrides)
    run = RunSettings(output_dir=str(output_dir), seed=values.pop("seed", 1), save_checkpoints_steps=1000)
    return classifier_run.ClassifierOptions(run=run, **values)


def script_command(model_dir, data_dir, output_dir, *flags):
    """The run_classifier.py command line for MRPC-format data and a model folder, plus `flags`."""
    return [sys.executable, os.path.join(REPO_ROOT, "scripts", "run_classifier.py"), "--task_name=MRPC",
            f"--data_dir={data_dir}", f"--vocab_file={model_dir}/vocab.txt",
            f"--bert_config_file={model_dir}/bert_config.json", f"--init_checkpoint={model_dir}/bert_model.ckpt",
            f"--output_dir={output_dir}", *flags]


def squad_paragraph(rng, index):
    """A synthetic SQuAD paragraph of tiny-vocab words with answerable and unanswerable questions."""
    words = list(rng.choice(WORDS, size=30))
    context = " ".join(words)
    qas = []
    for q in range(4):
        start = int(rng.randint(0, 27))
        answer = " ".join(words[start:start + 2])
        answer_start = len(" ".join(words[:start])) + (1 if start else 0)
        qas.append({"id": f"p{index}q{q}", "question": f"where is the {words[start]} ?",
                    "answers": [{"text": answer, "answer_start": answer_start}], "is_impossible": False})
    qas.append({"id": f"p{index}none", "question": "is it a big day ?", "answers": [], "is_impossible": True})
    return {"context": context, "qas": qas}


def write_squad_data(path, num_paragraphs, seed):
    rng = np.random.RandomState(seed)
    data = {"version": "v2.0",
            "data": [{"title": "synthetic", "paragraphs": [squad_paragraph(rng, i) for i in range(num_paragraphs)]}]}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)
    return str(path)


def squad_options(model_dir, output_dir, **overrides):
    """run_squad options for the tiny model: short windows and questions."""
    values = dict(bert_config_file=os.path.join(model_dir, "bert_config.json"),
                  vocab_file=os.path.join(model_dir, "vocab.txt"), output_dir=str(output_dir), max_seq_length=48,
                  max_query_length=10)
    values.update(overrides)
    return squad_run.SquadOptions(**values)


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


# The sentences of the shared tools/make_model_golden.py (tokenized [CLS] a [SEP] b [SEP], length 64, uncased).
GOLDEN_SENTENCES = [
    ("Who was Jim Henson?", "Jim Henson was a puppeteer."),
    ("The quick brown fox jumps over the lazy dog.", None),
    ("Amrozi accused his brother, whom he called \"the witness\", of deliberately distorting his evidence.",
     "Referring to him as only \"the witness\", Amrozi accused his brother of deliberately distorting his "
     "evidence."),
    ("naïve café — 北京 😀", "résumé"),
]


# Stored goldens: logits, probabilities and null odds moved at most 1.5e-5 with the kernels of other CPU families
# (ONEDNN_MAX_CPU_ISA=AVX2, TF_ENABLE_ONEDNN_OPTS=0, measured here); bound 1e-4. An answer text may differ from the
# golden's only where the golden's two best candidates are within that bound of each other (a tie across CPUs).
SQUAD_GOLDEN_TOLERANCE = 1e-4


def assert_tie_in_golden(golden_entries, entries, qid):
    """Our candidates differ from the golden's in order or text only where the golden's scores are tied within
    SQUAD_GOLDEN_TOLERANCE: the candidates ranked differently are within it of each other."""
    golden_scores = {e["text"]: e["start_logit"] + e["end_logit"] for e in golden_entries}
    for rank, (entry, golden_entry) in enumerate(zip(entries, golden_entries)):
        if entry["text"] != golden_entry["text"]:
            ours_in_golden = golden_scores.get(entry["text"])
            golden_score = golden_entry["start_logit"] + golden_entry["end_logit"]
            assert ours_in_golden is not None and abs(ours_in_golden - golden_score) <= SQUAD_GOLDEN_TOLERANCE, (
                f"{qid}: candidate {rank} is {entry['text']!r}, the golden's {golden_entry['text']!r}, not a tie")


# NER: CoNLL files of a learnable toy task.
FILLER = "the a of and to in is was it he she they with for on at by from said good bad big small".split()
ANIMALS = ["dog", "cat"]


def tagged_sentence(rng, length):
    """Filler words tagged O, animals B-animal, and 'new city' as a two-word B-place I-place."""
    words, tags = [], []
    while len(words) < length:
        choice = rng.randint(4)
        if choice == 0:
            words.append(str(rng.choice(ANIMALS)))
            tags.append("B-animal")
        elif choice == 1:
            words += ["new", "city"]
            tags += ["B-place", "I-place"]
        else:
            words.append(str(rng.choice(FILLER)))
            tags.append("O")
    return words, tags


def write_conll(path, sentences, with_tags=True, separator="\t"):
    with open(path, "w", encoding="utf-8") as f:
        f.write("-DOCSTART- -X- O O\n\n")
        for words, tags in sentences:
            for word, tag in zip(words, tags):
                f.write(f"{word}{separator}{tag}\n" if with_tags else f"{word}\n")
            f.write("\n")
    return str(path)


def write_ner_data(folder, seed=0, num_train=40, num_dev=8, num_test=6, long_test=True):
    rng = np.random.RandomState(seed)
    os.makedirs(folder, exist_ok=True)
    write_conll(os.path.join(folder, "train.txt"), [tagged_sentence(rng, rng.randint(3, 10))
                                                    for _ in range(num_train)])
    write_conll(os.path.join(folder, "dev.txt"), [tagged_sentence(rng, rng.randint(3, 10)) for _ in range(num_dev)],
                separator=" ")
    test = [tagged_sentence(rng, rng.randint(3, 10)) for _ in range(num_test)]
    if long_test:  # longer than one window of max_seq_length 16
        test.append(tagged_sentence(rng, 40))
    write_conll(os.path.join(folder, "test.txt"), test)
    return str(folder), test
