"""A mail backend for tests that holds every message until the test lets it through."""

import threading

from django.core.mail.backends.locmem import EmailBackend

GATE_TIMEOUT = 5


class GatedEmailBackend(EmailBackend):
    """Deliver to mail.outbox once ``gate`` is set; fail if it stays shut for GATE_TIMEOUT s."""

    gate = threading.Event()

    def send_messages(self, messages):
        if not self.gate.wait(GATE_TIMEOUT):
            raise RuntimeError("The mail gate stayed shut: the test never opened it.")
        return super().send_messages(messages)
