"""The plan both engines' DAGs follow: stages, dvc.yaml, code digests, the engine lock."""
