"""``python -m pipeflow``: the ``pipeflow`` command."""

import os
import sys

# `python -m` puts the current folder first on sys.path. In a cloned project a
# `yaml.py` or `json.py` there would then be imported by pipeflow itself: a read
# command would run the repository's code. pipeflow is found already; drop it.
if (sys.path and not sys.flags.safe_path
        and os.path.realpath(sys.path[0] or os.curdir) == os.path.realpath(os.curdir)):
    del sys.path[0]

from pipeflow.cli.app import main

main()
