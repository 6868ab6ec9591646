"""Data sets, losses and training loops for the shipped weights."""
