"""Remote targets: the machines a model will run on, reached over SSH (asyncssh, never the
``ssh`` program), checked for what matters to INT8, set up without internet from this host's own
wheels, and given the same calibench command to run (``calibench target``, ``--target``).

The modules, from the bottom: ``registry`` (what a target is, stored in the workspace),
``connect`` (SSH with the host key the user accepted), ``check`` (the findings and the verdict),
``wheelhouse`` and ``setup`` (the private venv on the target), ``transfer`` (resumable uploads by
hash), ``remote`` (a command run there, its progress streamed back) and ``job`` (the same from a
thread, for the CLI and a server-side executor).
"""
