"""Talking to git: hardened git calls, provenance, .gitattributes/.gitignore upkeep,
pipeflow state committed by mistake.
"""
