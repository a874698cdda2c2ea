"""Jobs: a typed description run by an executor, its result committed into the workspace.

``states`` (job states, stages, progress events) and ``kinds`` (the frozen, versioned
descriptions) are plain data; ``workspace`` owns every path; the job bodies (``baseline``,
``calibration``, ``dataset_import``) run anywhere with only their description, a work folder and
a :class:`~calibench.server.jobs.context.JobContext`; ``lifecycle`` queues, commits and ends jobs
in the server's database; ``runner`` hands queued jobs to an ``executor`` (``local``: worker
processes on this machine) and keeps the lease on them.
"""
