"""Datasets: import (in the request, or by a job when large), describe and delete."""
