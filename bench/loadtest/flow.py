"""What a virtual user does (locustfile.py) and with which account (accounts.py), for every module to read."""

USERNAME = "loadtest-{:03d}"
# The two passwords an iteration changes between (each passes the site's validators).
PASSWORDS = ("Quiet-harbour-72", "Amber-violin-39")
PROFILE_LOADS = 20
# The requests of one iteration, by the names the figures use, in the order sent.
REQUESTS = [
    "login form", "login", "profile", "password form", "password change", "password changed",
    "sessions", "logout",
]  # fmt: skip
