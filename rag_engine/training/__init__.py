"""Retraining the generator from feedback: training set, PEFT trainer, evaluation gate,
adapter registry and the retrain pipeline the worker runs.

Importing this package is cheap; torch loads only with the trainer and gate.
"""
