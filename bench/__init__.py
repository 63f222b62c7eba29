"""Benchmarks for ncb_relay (issue #9): ``python -m bench`` writes docs/benchmarks.{json,md}.

Nothing here is imported by the library, and no test asserts a timing: the
suite reports PASS or MISS beside each target and never fails on a miss.
"""
