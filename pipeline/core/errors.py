"""Errors that stop a stage with one clear message (exit status 2) instead of a traceback."""


class PipelineError(ValueError):
    """Base class: the message says what is wrong and how to fix it."""


class ConfigError(PipelineError):
    """params.yaml is invalid; the message says which key, which value and what is allowed."""


class DatasetError(PipelineError):
    """The dataset on disk is not what the configuration says."""


class CheckpointError(PipelineError):
    """A checkpoint is missing or does not match the run that wants to use it."""


class DeviceError(PipelineError):
    """A GPU, or a device setting (``PIPELINE_*`` environment), cannot be honoured here."""


class Interrupted(PipelineError):
    """Ctrl-C (SIGINT) stopped a stage; the message says what a rerun does."""


class DiskFullError(PipelineError):
    """Not enough free space where a stage writes; the message names the path and the space."""
