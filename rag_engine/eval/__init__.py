"""Evaluation: answer metrics, BEIR data sets, retrieval and answer evaluation runs."""
