"""Distributional agents (C51 and ensembles). Not implemented yet."""
