"""The project handle: where a project lives (root, config, state db, store, run index)
and its config.
"""
