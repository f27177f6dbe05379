"""A password hasher for tests that must hold password checks open while others arrive."""

import threading

from django.contrib.auth.hashers import MD5PasswordHasher


class Gate:
    """Counts the password verifications that reach it and holds each until opened."""

    def __init__(self, *, timeout=30):
        self.verified = 0
        self.finished = 0
        self.timeout = timeout
        self._opened = False
        self._changed = threading.Condition()

    def pass_through(self):
        """Count one verification and wait until the gate opens."""
        with self._changed:
            self.verified += 1
            self._changed.notify_all()
            if not self._changed.wait_for(lambda: self._opened, self.timeout):
                raise TimeoutError("the gate never opened")

    def finish(self):
        """Note that one request is over, whatever its answer."""
        with self._changed:
            self.finished += 1
            self._changed.notify_all()

    def wait_until_held(self, count):
        """Wait until ``count`` verifications are held at the gate."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.verified >= count, self.timeout):
                raise TimeoutError("the requests never reached the gate")

    def open_when_settled(self, requests):
        """Open once each of ``requests`` is held at the gate or over; return how many are held."""
        with self._changed:
            settled = self._changed.wait_for(lambda: self.verified + self.finished >= requests, self.timeout)
            self._opened = True
            self._changed.notify_all()
        if not settled:
            raise TimeoutError("the requests never reached the gate")
        return self.verified


class GatedMD5PasswordHasher(MD5PasswordHasher):
    """The suite's MD5 hasher, whose every verification first passes ``gate`` when one is set."""

    gate = None

    def verify(self, password, encoded):
        if self.gate is not None:
            self.gate.pass_through()
        return super().verify(password, encoded)
