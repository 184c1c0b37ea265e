"""Installs the ``bert`` library and the command-line programs in ``scripts/``."""

import glob

from setuptools import find_packages, setup

setup(
    name="bert-tf",
    version="0.1.0",
    description="A faithful TensorFlow (tf.compat.v1 / Estimator) reimplementation of the original BERT release.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9,<3.12",
    packages=find_packages(include=["bert", "bert.*"]),
    install_requires=[
        "tensorflow>=2.15,<2.16",
        "numpy<2",
        "absl-py",
        "six",
    ],
    extras_require={"test": ["pytest"]},
    scripts=sorted(glob.glob("scripts/*.py")),
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
