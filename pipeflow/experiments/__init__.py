"""Experiments: run the pipeline with params overridden, in scratch workspaces, without
touching the project's files; compare them; keep the best.

    overrides.py  --set KEY=VALUE and --sweep FILE -> the combinations to run
    paramedit.py  writing values into params files, keeping their formatting
    yamledit.py   ... in YAML text, in place (node positions); tomledit.py: TOML lines
    names.py      experiment names: given, templated ({train.C}) or generated
    scratch.py    a scratch workspace: the project's files, sharing its cache and records
    run.py        ``exp run``: one experiment per combination, N at a time
    table.py      ``exp show`` / ``exp diff``: rows, columns, sorts and formats
    apply.py      ``exp apply`` / ``exp remove``

The experiments themselves are run records (:mod:`pipeflow.lineage.experiments`).
This layer sits above ``ops``: an experiment is a ``repro`` in a scratch workspace.
"""
