"""What a stage's code and environment are: Python code dependencies and their hashes,
interpreters, installed distributions.
"""
