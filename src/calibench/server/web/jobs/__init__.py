"""Jobs as the pages and the API see them: views, logs, cancel and retry, and the one function
that queues a job."""
