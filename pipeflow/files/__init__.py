"""Files pipeflow reads and writes safely: atomic writes, bounded reads and loads, the
path rule, where workspace writes may go, the repository lock, the machine cache.
"""
