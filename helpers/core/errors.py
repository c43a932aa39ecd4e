"""Exceptions whose messages name the problem and the fix."""


class CourseworkError(Exception):
    """Base class: something the user can fix (a parameter, a file, a folder)."""


class ParameterError(CourseworkError, ValueError):
    """A notebook parameter has a value we cannot use."""


class DataError(CourseworkError):
    """Data is missing, corrupt or inconsistent."""


class CheckpointError(CourseworkError):
    """A checkpoint does not fit the model it is loaded into."""
