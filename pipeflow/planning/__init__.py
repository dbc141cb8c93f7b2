"""Deciding what runs: the stage DAG, fingerprints, staleness, source data and its
rendering.
"""
