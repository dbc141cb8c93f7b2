"""``pipeflow reproduce PATH@VERSION``: rebuild a recorded version from scratch in a
workspace of its own and say, stage by stage, whether it comes out the same.

    workspace.py  the scratch worktree at the recorded commit, its sources and params
    envdiff.py    the current environment against the recorded one
    compare.py    one output against its recorded version (bytes, metrics values)
    run.py        the verb: plan, run, compare, record
    audit.py      the ``reproduction`` record each reproduction writes
"""
