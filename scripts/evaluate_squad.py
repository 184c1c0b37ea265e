#!/usr/bin/env python
"""Scores SQuAD predictions like the official evaluation scripts (v1.1 or v2.0, chosen by the data file's version).

    evaluate_squad.py DATA_FILE PREDICTIONS_FILE [--na-prob-file NULL_ODDS_FILE] [--na-prob-thresh 1.0]

Prints one JSON object: exact_match and f1 for SQuAD 1.1; exact, f1, total, HasAns_*, NoAns_* (and best_* with
--na-prob-file) for SQuAD 2.0.
"""

import argparse
import json
import sys

from bert import squad_evaluation


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluation for SQuAD 1.1 and 2.0 (official numbers).")
    parser.add_argument("data_file", metavar="data.json", help="Input data JSON file.")
    parser.add_argument("pred_file", metavar="pred.json", help="Model predictions.")
    parser.add_argument("--out-file", "-o", metavar="eval.json",
                        help="Write accuracy metrics to file (default is stdout).")
    parser.add_argument("--na-prob-file", "-n", metavar="na_prob.json",
                        help="SQuAD 2.0: model estimates of probability of no answer (e.g. null_odds.json).")
    parser.add_argument("--na-prob-thresh", "-t", type=float, default=1.0,
                        help="SQuAD 2.0: predict \"\" if no-answer probability exceeds this (default = 1.0).")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        results = squad_evaluation.evaluate_files(args.data_file, args.pred_file, args.na_prob_file,
                                                  args.na_prob_thresh)
    except (OSError, ValueError) as err:
        print(f"evaluate_squad.py: error: {err}", file=sys.stderr)
        return 2
    if args.out_file:
        with open(args.out_file, "w", encoding="utf-8") as writer:
            json.dump(results, writer)
    else:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
