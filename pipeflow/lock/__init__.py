"""pipeline.lock: reading and writing it, conflict markers, the three-way merge and
git's merge driver.
"""
