"""The evaluate_squad program: scores SQuAD predictions like the official evaluation scripts (v1.1 or v2.0, chosen
by the data file's "version"), with the official scripts' command line.

    python -m bert.evaluate_squad DATA_FILE PREDICTIONS_FILE [--out-file EVAL_JSON]
        [--na-prob-file NULL_ODDS_FILE] [--na-prob-thresh 1.0]

Prints one JSON object: exact_match and f1 for SQuAD 1.1; exact, f1, total, HasAns_*, NoAns_* (and best_* with
--na-prob-file) for SQuAD 2.0. Warnings (ignored or missing predictions) go to stderr; problems with the files end
in one `error: ...` line like every other program. It does not import TensorFlow.
"""

import argparse
import json
from typing import Optional, Sequence

from bert.common.errors import UserError, user_errors_reported
from bert.squad import evaluation as squad_evaluation


class _ArgumentParser(argparse.ArgumentParser):
    """argparse whose command-line errors are UserErrors, reported as one `error:` line."""

    def error(self, message: str):
        raise UserError(f"{message} (usage: {self.format_usage().strip()[len('usage: '):]})")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = _ArgumentParser(prog="evaluate_squad.py",
                             description="Evaluation for SQuAD 1.1 and 2.0 (the official numbers).")
    parser.add_argument("data_file", metavar="data.json", help="Input data JSON file.")
    parser.add_argument("pred_file", metavar="pred.json", help="Model predictions.")
    parser.add_argument("--out-file", "-o", metavar="eval.json",
                        help="Write accuracy metrics to file (default is stdout).")
    parser.add_argument("--na-prob-file", "-n", metavar="na_prob.json",
                        help="SQuAD 2.0: model estimates of probability of no answer (e.g. null_odds.json).")
    parser.add_argument("--na-prob-thresh", "-t", type=float, default=1.0,
                        help="SQuAD 2.0: predict \"\" if no-answer probability exceeds this (default = 1.0).")
    return parser.parse_args(argv)


def evaluate(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    results = squad_evaluation.evaluate_files(args.data_file, args.pred_file, args.na_prob_file,
                                              args.na_prob_thresh)
    if args.out_file:
        try:
            with open(args.out_file, "w", encoding="utf-8") as writer:
                json.dump(results, writer)
        except OSError as error:
            raise UserError(f"cannot write --out-file {args.out_file}: {error.strerror}") from None
    else:
        print(json.dumps(results, indent=2))


def main(argv: Optional[Sequence[str]] = None) -> None:
    with user_errors_reported():
        evaluate(argv)


if __name__ == "__main__":
    main()
