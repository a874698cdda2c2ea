"""The workbench: a web app (``calibench serve``) and JSON API over the calibration workflow.

Projects pair a model with a dataset and a target; jobs (baseline inference, calibration) run in
worker processes with their state and progress in the database, so the pages can follow them.
"""
