"""Fitting: optimal LRs per width, their scaling exponent across widths, constants, with intervals.

Light on purpose: import :mod:`fitting.api`, :mod:`fitting.predict` or :mod:`fitting.plots` directly.
"""
