"""PruneLab's torch-free vocabulary, shared by the API, the workers and the command line: the job spec and
catalog, the mask codec, the presets, the settings and the queue names. It imports nothing else of ours."""
