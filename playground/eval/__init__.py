"""Batch evaluation: datasets, scorers, the batch runner and its results."""
