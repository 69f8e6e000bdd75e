"""Codecs: bytes in, records out. No file I/O happens in this package.

- :mod:`clearing.codecs.sniff`  — what kind of file is this (TAP, Notification, RAP, ACK, NRT)?
- :mod:`clearing.codecs.asn1`   — full-fidelity decode/encode with asn1tools, per version.
- :mod:`clearing.codecs.fast`   — the fast vectorised decoder of call events into Arrow.
- :mod:`clearing.codecs.events` — the normalised event table shared by TAP and CIBER.
- :mod:`clearing.codecs.ber` / :mod:`clearing.codecs.ber_write` — BER read; tag and length
  writer, columnar writer.
- :mod:`clearing.codecs.tap3` — TAP encoding and the TAP primitive values.
- :mod:`clearing.codecs.rap` — RAP 1.5 return batches and Acknowledgements (read, write).
- :mod:`clearing.codecs.facts`  — what a file declares (header stamps, audit / batch totals),
  as the register records it once.
"""

from __future__ import annotations
