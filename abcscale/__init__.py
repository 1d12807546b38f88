"""abcscale: hyperparameter transfer across width for abc-parameterizations."""

__version__ = "0.1.0"
