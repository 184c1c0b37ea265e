"""The --helpshort / --helpfull output of every program, run the two ways a checkout runs them
(`python scripts/X.py` and `python -m bert.X`), and parsers for absl's help text.

Importing TensorFlow takes seconds, so one subprocess (this file run as a script) runs all the programs' real
command lines in turn through runpy, removing each program's flags before the next one defines its own.
"""

import functools
import json
import os
import re
import subprocess
import sys
from typing import Dict, Set

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = ("run_classifier", "run_squad", "run_pretraining", "create_pretraining_data", "extract_features")
FORMS = ("script", "module")
HELP_FLAGS = ("--helpshort", "--helpfull")

_FLAG_LINE = re.compile(r"^\s+(?:-\?,)?--(?:\[no\])?(\w+):")
_MODULE_HEADING = re.compile(r"^(\S.*):$")


def flags_listed(help_text: str) -> Set[str]:
    """Names of the flags a help text lists."""
    return {match.group(1) for match in map(_FLAG_LINE.match, help_text.splitlines()) if match}


def flags_by_section(help_text: str) -> Dict[str, Set[str]]:
    """Flag names under each module heading of absl's help (after its "flags:" line)."""
    sections: Dict[str, Set[str]] = {}
    lines = help_text.splitlines()
    current = None
    for line in lines[lines.index("flags:") + 1:]:
        heading = _MODULE_HEADING.match(line)
        if heading:
            current = sections.setdefault(heading.group(1), set())
        elif current is not None and _FLAG_LINE.match(line):
            current.add(_FLAG_LINE.match(line).group(1))
    return sections


def program_flags_in_full_help(help_text: str) -> Set[str]:
    """The flags --helpfull shows as defined by the project: sections of `bert.*` modules and of the program's
    own file; absl's and TensorFlow's sections are left out."""
    names: Set[str] = set()
    for section, section_flags in flags_by_section(help_text).items():
        if section.startswith("bert.") or section.endswith(".py"):
            names |= section_flags
    return names


@functools.lru_cache(maxsize=None)
def help_outputs() -> Dict[str, str]:
    """{"<program> <form> <help flag>": stdout} for every program, form and help flag (one subprocess)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    completed = subprocess.run([sys.executable, os.path.abspath(__file__)], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=600)
    if completed.returncode != 0:
        raise AssertionError(f"help driver failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.splitlines()[-1])


def _run_all() -> Dict[str, str]:
    import contextlib
    import io
    import runpy

    from absl import flags

    def remove_program_flags() -> None:
        for module, module_flags in list(flags.FLAGS.flags_by_module_dict().items()):
            if module.startswith("bert.") or module.endswith(".py"):
                for flag in list(module_flags):  # deleting a flag shortens this list
                    if flag.name in flags.FLAGS:
                        delattr(flags.FLAGS, flag.name)

    outputs = {}
    for program in PROGRAMS:
        for form in FORMS:
            for help_flag in HELP_FLAGS:
                text = io.StringIO()
                with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
                    if form == "script":
                        path = os.path.join("scripts", f"{program}.py")
                        sys.argv = [path, help_flag]
                        runpy.run_path(path, run_name="__main__")
                    else:
                        sys.argv = ["-m", help_flag]
                        runpy.run_module(f"bert.{program}", run_name="__main__", alter_sys=True)
                outputs[f"{program} {form} {help_flag}"] = text.getvalue()
                remove_program_flags()
    return outputs


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")  # runpy notes that a module runs again as __main__; expected here
    results = _run_all()
    sys.stdout.write("\n" + json.dumps(results) + "\n")
