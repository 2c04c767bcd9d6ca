"""The validator as it was before issue 15 (a frozen copy), kept as the baseline arm of
`workshop bench`: the bench measures today's validator against this one side by side in one
run, on the same generated queries. Frozen on purpose: nothing else imports it, and it must
not be edited (a copy loaded from git would need a git checkout at bench time; a package
copy works from an installed wheel too).
"""

from .validator import validate

__all__ = ["validate"]
