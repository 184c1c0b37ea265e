"""The trivial NER baseline: every word gets its most frequent tag in the training file (O if unseen).

    python benchmarks/ner_baseline.py --data_dir=... [--train_file=... --dev_file=... --test_file=...]

Prints `key = value` lines of dev_* and test_* entity scores (conlleval semantics, as run_ner's
eval_results.txt), the yardstick next to which fine-tuned F1 means something. Takes run_ner's data flags.
"""

import os
from typing import Dict

from absl import app, flags

from bert import run_ner
from bert.ner import data as ner_data
from bert.ner import metrics as ner_metrics
from bert.runtime import flags as common_flags

FLAGS = flags.FLAGS


def baseline_scores(data_dir: str, train_file: str, dev_file: str, test_file: str, tag_scheme: str = "auto",
                    alternative_tags: str = "error") -> Dict[str, float]:
    """Entity scores of the most-frequent-tag baseline on the dev and test files, keys prefixed dev_/test_."""
    def path(name):  # a name inside data_dir, or an absolute path (as run_ner)
        return os.path.join(data_dir, name)

    train, scheme = ner_data.read_training_sentences(path(train_file), tag_scheme, alternative_tags)
    labels = ner_data.label_list_from(train)
    results = {}
    for prefix, name, flag in (("dev", dev_file, "--dev_file"), ("test", test_file, "--test_file")):
        sentences = ner_data.read_evaluation_sentences(path(name), flag, scheme, labels, alternative_tags)
        predicted = ner_data.most_frequent_tag_baseline(train, sentences)
        scores = ner_metrics.entity_scores([s.tags for s in sentences], predicted)
        results.update({f"{prefix}_{key}": value for key, value in scores.items()})
    return results


def define_flags() -> None:
    run_ner.define_data_flags()


def main() -> None:
    define_flags()
    flags.mark_flag_as_required("data_dir")

    def program(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        with common_flags.user_errors_reported():
            results = baseline_scores(FLAGS.data_dir, FLAGS.train_file, FLAGS.dev_file, FLAGS.test_file,
                                      FLAGS.tag_scheme, FLAGS.alternative_tags)
        for key in sorted(results):
            value = results[key]
            print(f"{key} = {value:.4f}" if isinstance(value, float) else f"{key} = {value}")

    app.run(program)


if __name__ == "__main__":
    main()
