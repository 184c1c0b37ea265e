"""The run_squad program: fine-tune BERT on SQuAD 1.1 / 2.0 and predict answers (the original's flags and files).

Importing this module defines no flags; `main()` defines them and runs the job of `bert.squad.job`.
It also carries the public names of the original `run_squad.py` (`read_squad_examples`,
`convert_examples_to_features`, `FeatureWriter`, `write_predictions`, ...) for code written against the original
package; where the original read a flag, the function takes a keyword argument with that flag's default.
"""

import sys

from bert.runtime import logs

if __name__ == "__main__":  # run as a program: TensorFlow's start-up lines are hidden before it is imported
    logs.quiet_start(sys.argv)

from typing import Sequence

from absl import flags

from bert.runtime import flags as common_flags
from bert.runtime import input_pipeline
from bert.squad import data as squad
from bert.squad import job as squad_run
from bert.squad import model as squad_model
from bert.squad import postprocess as squad_postprocess

# The original run_squad.py's public names (same arguments, defaults and results).
SquadExample = squad.SquadExample
InputFeatures = squad.InputFeatures
read_squad_examples = squad.read_squad_examples  # version_2_with_negative: keyword, default False
convert_examples_to_features = squad.convert_examples_to_features
RawResult = squad_postprocess.RawResult
get_final_text = squad_postprocess.get_final_text  # verbose_logging: keyword, default False
create_model = squad_model.create_model
model_fn_builder = squad_model.model_fn_builder


class FeatureWriter:
    """The original's `FeatureWriter(filename, is_training)`: the library's writer, opened at the first feature
    because the original's signature does not say the sequence length (the features do)."""

    def __init__(self, filename: str, is_training: bool):
        self.filename = filename
        self.is_training = is_training
        self._writer = None

    @property
    def num_features(self) -> int:
        return 0 if self._writer is None else self._writer.num_features

    def process_feature(self, feature: squad.InputFeatures) -> None:
        if self._writer is None:
            self._writer = squad.FeatureWriter(self.filename, self.is_training, len(feature.input_ids))
        self._writer.process_feature(feature)

    def close(self) -> None:
        if self._writer is None:  # no features: an empty file, as the original leaves
            self._writer = squad.FeatureWriter(self.filename, self.is_training, 0)
        self._writer.close()


def input_fn_builder(input_file: str, seq_length: int, is_training: bool, drop_remainder: bool):
    """The original's TFRecord input_fn over a FeatureWriter file."""
    return input_pipeline.input_fn_builder(input_file, squad.feature_spec(seq_length, is_training), is_training,
                                           drop_remainder)


def write_predictions(all_examples: Sequence[squad.SquadExample], all_features: Sequence[squad.InputFeatures],
                      all_results: Sequence[RawResult], n_best_size: int, max_answer_length: int,
                      do_lower_case: bool, output_prediction_file: str, output_nbest_file: str,
                      output_null_log_odds_file: str, version_2_with_negative: bool = False,
                      null_score_diff_threshold: float = 0.0, verbose_logging: bool = False):
    """The original's write_predictions (its three flags as keyword arguments); writes the same JSON files and
    returns the answers by question id."""
    options = squad_postprocess.PredictionOptions(
        n_best_size=n_best_size, max_answer_length=max_answer_length, do_lower_case=do_lower_case,
        version_2_with_negative=version_2_with_negative, null_score_diff_threshold=null_score_diff_threshold,
        verbose_logging=verbose_logging)
    return squad_postprocess.write_predictions(all_examples, all_features, all_results, options,
                                               output_prediction_file, output_nbest_file, output_null_log_odds_file)


def define_flags() -> None:
    """All flags of run_squad, with the original's names and defaults (plus the opt-in new ones)."""
    flags.DEFINE_string("train_file", None, "SQuAD json for training, e.g. train-v1.1.json.")
    flags.DEFINE_string("predict_file", None,
                        "SQuAD json to predict answers for, e.g. dev-v1.1.json or test-v1.1.json.")
    flags.DEFINE_integer("doc_stride", 128, "Tokens between the starts of consecutive windows over a long paragraph.")
    flags.DEFINE_integer("max_query_length", 64, "Questions longer than this many tokens are truncated to it.")
    flags.DEFINE_integer("n_best_size", 20, "How many candidate answers nbest_predictions.json lists per question.")
    flags.DEFINE_integer("max_answer_length", 30,
                         "Longest answer (in tokens) that can be predicted; start and end are predicted separately.")
    flags.DEFINE_bool("verbose_logging", False,
                      "Log every warning of answer post-processing (many are expected on a normal SQuAD run).")
    flags.DEFINE_bool("version_2_with_negative", False, "SQuAD 2.0: some questions have no answer.")
    flags.DEFINE_float("null_score_diff_threshold", 0.0,
                       "SQuAD 2.0: predict no answer when null score - best non-null score is above this.")
    common_flags.define_fine_tuning_program_flags(max_seq_length=384, with_eval=False)


def main() -> None:
    define_flags()
    common_flags.run_task_script(squad_run.SquadOptions, squad_run.run,
                                 required_flags=("vocab_file", "bert_config_file", "output_dir"))


if __name__ == "__main__":
    main()
