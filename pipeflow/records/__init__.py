"""Run records on disk and their SQLite index: the data lineage reads.
"""
