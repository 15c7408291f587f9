"""params.yaml: its validation and the runs it describes."""
