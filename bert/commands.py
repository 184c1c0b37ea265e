"""The installed `bert-tf-*` commands (setup.py): each hides TensorFlow's start-up lines, then runs its program.

A program module quiets TensorFlow itself only when run as `python -m bert.<program>`, so that importing it (from
a notebook, say) changes nothing; an installed command imports it first, so it quiets TensorFlow here, before.
"""

import functools
import importlib
import sys

from bert.runtime import logs

PROGRAMS = ("run_classifier", "run_squad", "run_pretraining", "create_pretraining_data", "extract_features",
            "run_classifier_with_tfhub", "export_hub_module", "run_ner", "convert_hf_checkpoint", "evaluate_squad",
            "predict")


def run(program: str) -> None:
    """Runs `bert.<program>`'s main() with TensorFlow's start-up lines hidden (unless verbosity is asked for)."""
    logs.quiet_start(sys.argv)
    importlib.import_module(f"bert.{program}").main()


# One function per program, named after it, for the entry points (e.g. bert.commands:run_classifier).
for _program in PROGRAMS:
    globals()[_program] = functools.partial(run, _program)
