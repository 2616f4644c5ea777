"""The one error type users see: its message is a single line that says what and where."""


class VmtailorError(Exception):
    """A failure to report to the user as one line, without a traceback."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} — {self.hint}" if self.hint else text


class PlanError(VmtailorError):
    """An operation cannot be planned on this guest; nothing has been written."""


class UsageError(VmtailorError):
    """The command line is wrong, or a file it names cannot be read as what it should be
    (a config, vars file or inventory that is missing, not text, not a mapping); nothing
    has been done."""
