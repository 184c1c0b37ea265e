"""A faithful TensorFlow reimplementation of the original BERT release.

Code written against the original modules keeps working after
``from bert import modeling, tokenization, optimization``.
"""

__version__ = "0.1.0"
