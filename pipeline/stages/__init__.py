"""One module per pipeline stage: each adds its sub-command and runs its pure core."""
