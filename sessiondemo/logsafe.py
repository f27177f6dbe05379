"""
Text from a request, made safe to write into a log line.

A log reader takes a line break for the start of a new record, so a newline in
a path or a header could forge one. Call sites pass request data through
text(); EscapeControls, a filter on every handler in LOGGING, escapes what any
other record carries, so neither alone has to be complete.
"""

import copy
import logging
import re

# What can end a line (C0 and C1 controls, DEL, Unicode's line and paragraph
# separators), make it display other than it reads (bidirectional overrides
# and isolates), or fail to encode at all (lone surrogates).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escaped(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(message):
    """Return ``message`` with each character UNSAFE matches written as a backslash escape."""
    return UNSAFE.sub(_escaped, message)


def text(value):
    """Return ``value`` as one line of log text that reads back unambiguously (backslashes doubled)."""
    return escape_controls(str(value).replace("\\", "\\\\"))


class EscapeControls(logging.Filter):
    """Escape control characters in the message of each record; leave its traceback as it is."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:
            # A broken call (arguments that do not fit); the handler reports it.
            return True
        if not UNSAFE.search(message):
            return True
        # A copy: other handlers of the record get it unchanged (Python 3.12+).
        record = copy.copy(record)
        record.msg, record.args = escape_controls(message), None
        return record
