"""The run_ner program: fine-tune, evaluate and apply BERT for named-entity recognition on CoNLL files.

    python -m bert.run_ner --do_train=true --do_eval=true --data_dir=... --output_dir=...

Importing this module defines no flags; `main()` defines them and runs the job of `bert.ner.job`. It takes
run_classifier's flags (phases, TPU, performance, --export_dir) plus the NER ones below.
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

from absl import flags

from bert.ner import data as ner_data
from bert.ner import job as ner_run
from bert.runtime import flags as common_flags


def define_data_flags() -> None:
    """The CoNLL files and how their tags are read (shared with benchmarks/ner_baseline.py)."""
    flags.DEFINE_string("data_dir", None, "The folder holding the CoNLL files (train.txt, dev.txt, test.txt).")
    flags.DEFINE_string("train_file", "train.txt", "Training file: a name inside data_dir, or an absolute path.")
    flags.DEFINE_string("dev_file", "dev.txt", "Dev file (do_eval): a name inside data_dir, or an absolute path.")
    flags.DEFINE_string("test_file", "test.txt",
                        "Test file (do_predict), tagged or not: a name inside data_dir, or an absolute path.")
    flags.DEFINE_enum("tag_scheme", "auto", list(ner_data.TAG_SCHEMES),
                      "Tag scheme of the files: bio, iob1 or bioes; auto = bioes if the training file has E-/S- "
                      "tags, else bio (which reads IOB1 the same way). Everything is converted to BIO.")
    flags.DEFINE_enum("alternative_tags", "error", list(ner_data.ALTERNATIVE_TAG_POLICIES),
                      "A gold tag listing comma-separated alternatives (B-person,B-group): error, or read it as "
                      "its first alternative.")


def define_flags() -> None:
    """All flags of run_ner: run_classifier's groups with their defaults, plus the data files and windows."""
    define_data_flags()
    flags.DEFINE_integer("doc_stride", 64,
                         "A sentence longer than max_seq_length - 2 sub-tokens is split into windows starting this "
                         "many sub-tokens apart; each word is predicted in the window where it has most context.")
    common_flags.define_fine_tuning_program_flags(max_seq_length=128)


def main() -> None:
    define_flags()
    common_flags.run_task_script(ner_run.NerOptions, ner_run.run,
                                 required_flags=("data_dir", "vocab_file", "bert_config_file", "output_dir"))


if __name__ == "__main__":
    main()
