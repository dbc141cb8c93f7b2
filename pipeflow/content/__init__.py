"""Content hashing: xxh3-128 of files and directory manifests, the stat cache, ignore
rules.
"""
