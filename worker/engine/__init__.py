"""The pruning engine: a job spec goes in, steps come out through a Reporter (see runner.run_job).

Torch lives here and below; nothing under worker/engine is imported by the API process.
"""
