"""The workbench's web layer, one package per domain (models, datasets, projects, jobs), each with
its routes (pages and JSON API side by side), its service and its schemas; the shared pieces
(security, templates, dependencies, error handlers) beside them. ``server/app.py`` composes them."""
