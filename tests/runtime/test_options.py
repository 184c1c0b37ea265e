"""The option dataclasses the tasks share: required fields, defaults that are the original's flags."""

import dataclasses

import pytest

from bert.classifier.job import ClassifierOptions
from bert.ner.job import NerOptions
from bert.runtime.options import FineTuningOptions, RunSettings
from bert.squad.job import SquadOptions

PATHS = dict(bert_config_file="config.json", vocab_file="vocab.txt", output_dir="out")


@pytest.mark.parametrize("options_class,own_required", [(ClassifierOptions, {"task_name": "mrpc", "data_dir": "d"}),
                                                        (NerOptions, {"data_dir": "d"}), (SquadOptions, {})])
def test_every_required_field_must_be_given(options_class, own_required):
    options = options_class(**PATHS, **own_required)
    assert options.run == RunSettings(output_dir="out")
    for name in list(PATHS) + list(own_required):
        values = dict(PATHS, **own_required)
        del values[name]
        with pytest.raises(TypeError, match=f"{options_class.__name__} needs {name}$"):
            options_class(**values)


def test_task_defaults_are_the_original_flags():
    squad, classifier = SquadOptions(**PATHS), ClassifierOptions(task_name="mrpc", data_dir="d", **PATHS)
    assert (squad.max_seq_length, squad.doc_stride, squad.max_query_length) == (384, 128, 64)
    assert classifier.max_seq_length == 128
    assert (classifier.train_batch_size, classifier.eval_batch_size, classifier.predict_batch_size) == (32, 8, 8)
    assert (classifier.learning_rate, classifier.num_train_epochs, classifier.warmup_proportion) == (5e-5, 3.0, 0.1)
    assert not hasattr(squad, "do_eval")  # run_squad has no evaluation phase


def test_fine_tuning_fields_are_shared_not_repeated():
    shared = {field.name for field in dataclasses.fields(FineTuningOptions)}
    for options_class in (ClassifierOptions, NerOptions, SquadOptions):
        assert shared <= {field.name for field in dataclasses.fields(options_class)}
