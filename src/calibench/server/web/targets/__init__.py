"""Targets: the machines jobs run on (the workspace's ``targets.json``), and the fleet view."""
