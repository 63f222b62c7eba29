"""The conformance suite's Python side (issue #8): the reference adapter and the runner.

The suite itself is ``interop_tests/`` (pytest); ``interop_tests/harness.md``
specifies the JSON-lines protocol an adapter speaks.  This package is an
adapter in the layering sense: it reads stdin, writes stdout and starts
processes, so the sans-IO core never imports it.

- :mod:`ncb_relay.conformance.adapter`: the reference implementation's adapter
  (``python -m ncb_relay.conformance.adapter``).
- :mod:`ncb_relay.conformance.requirements`: the requirement ids of ``spec/``,
  their text, level (MUST or SHOULD) and section.
- :mod:`ncb_relay.conformance.runner`: ``ncb-relay conformance``, which runs the
  suite against an adapter and prints a verdict per spec section.
"""
