"""Installs the ``bert`` library and its command-line programs (see docs/installation.md)."""

from setuptools import find_packages, setup

# Installed command -> its launcher in bert.commands (which hides TensorFlow's start-up lines, then runs the
# program module's main). The `bert-tf-` prefix keeps generic names such as
# run_classifier off PATH, where other packages' programs could clash with them; from a checkout the original's
# `python scripts/run_classifier.py ...` and `python -m bert.run_classifier ...` run the same programs.
COMMANDS = {
    "bert-tf-run-classifier": "bert.commands:run_classifier",
    "bert-tf-run-squad": "bert.commands:run_squad",
    "bert-tf-run-pretraining": "bert.commands:run_pretraining",
    "bert-tf-create-pretraining-data": "bert.commands:create_pretraining_data",
    "bert-tf-extract-features": "bert.commands:extract_features",
    "bert-tf-run-classifier-with-tfhub": "bert.commands:run_classifier_with_tfhub",
    "bert-tf-export-hub-module": "bert.commands:export_hub_module",
    "bert-tf-run-ner": "bert.commands:run_ner",
    "bert-tf-convert-hf-checkpoint": "bert.commands:convert_hf_checkpoint",
    "bert-tf-evaluate-squad": "bert.commands:evaluate_squad",
    "bert-tf-predict": "bert.commands:predict",
}

setup(
    name="bert-tf",
    version="0.1.0",
    description="A faithful TensorFlow (tf.compat.v1 / Estimator) reimplementation of the original BERT release.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9,<3.14",
    packages=find_packages(include=["bert", "bert.*"]),
    # Packages at the top of the checkout: an editable install is then one .pth line, without the import hook
    # (and the notice) setuptools otherwise adds.
    package_dir={"": "."},
    # Two stacks, chosen by the interpreter (bert.runtime.engine runs the programs on both): TensorFlow 2.15, the
    # last with tf.estimator and TPUEstimator, has wheels up to Python 3.11; Python 3.12 and 3.13 get TensorFlow
    # 2.16-2.21, whose tf.compat.v1 keeps everything else the programs use.
    install_requires=[
        "tensorflow>=2.15,<2.16; python_version < '3.12'",
        "numpy<2; python_version < '3.12'",
        "tensorflow>=2.16,<2.22; python_version >= '3.12'",
        "numpy>=1.26,<3; python_version >= '3.12'",
        "absl-py",
        "six",
    ],
    extras_require={
        "test": ["pytest"],
        # hub.Module (TF1 Hub format) left tensorflow-hub in 0.16 and needs tf.estimator-era TensorFlow.
        "hub": ["tensorflow-hub==0.15.0; python_version < '3.12'"],
    },
    entry_points={"console_scripts": [f"{command} = {target}" for command, target in COMMANDS.items()]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
