"""A benchmark of sessiondemo's Redis session engine against Django's built-in engines."""
