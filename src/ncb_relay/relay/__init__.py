"""The relay node: an adapter around the sans-IO core (issue 5).

The relay stores envelopes for their recipients and hands them out; it never
reads one.  Everything it knows of a message comes from
:func:`ncb_relay.verify_routing` in the core.  This package holds the I/O: the
mailbox store (:mod:`.storage`, the interface; :mod:`.sqlite_store`, the
embedded SQLite backend; :mod:`.storage_conformance`, the checks every backend
passes) and the HTTP application (:mod:`.app`, ``create_app``; its route table
:mod:`.routes`, handlers :mod:`.submission`, :mod:`.mailbox_routes`,
:mod:`.public_routes`; :mod:`.problems`, :mod:`.openapi`, :mod:`.metrics`).
The core never imports this package.

The modules here are plain public modules; import them directly (importing the
package itself loads no database or network code).
"""
