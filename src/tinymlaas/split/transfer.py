"""Predicted time to send one encoded hop message over an emulated link, before anything is sent.

The planner compares cuts by what crosses them; bytes alone do not say whether a cut costs 50 ms or
5 s, because CoAP sends a large body Block1-wise in lock step and every block pays a round trip. The
model follows what really happens on the wire between two pipeline nodes:

- a confirmable POST over DTLS; a body over one block is split into blocks of ``block_bytes`` and each
  block waits for its 2.31 Continue (the last for the final response) before the next is sent;
- each request and each response datagram takes its serialization time (bytes × 8 / bandwidth, as
  ``UdpLinkEmulator`` charges it: the CoAP message and the DTLS record, no UDP/IP headers), plus the
  one-way latency, plus the mean of the uniform jitter;
- a datagram is lost with probability ``loss`` each way; the sender then retransmits after
  ACK_TIMEOUT × a uniform factor in 1..ACK_RANDOM_FACTOR, doubling per retry, at most MAX_RETRANSMIT
  times. The figures are expected values, not a worst case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tinymlaas.lwm2m.linkemu import LinkProfile
from tinymlaas.split.wire import HOP_PATH

__all__ = [
    "ACK_RANDOM_FACTOR",
    "ACK_TIMEOUT_S",
    "BLOCK_BYTES",
    "DTLS_RECORD_OVERHEAD",
    "MAX_RETRANSMIT",
    "TransferEstimate",
    "coap_request_overhead",
    "predict_transfer",
]

# aiocoap 0.4 (numbers/constants.py, TransportTuning): RFC 7252's defaults.
ACK_TIMEOUT_S = 2.0
ACK_RANDOM_FACTOR = 1.5
MAX_RETRANSMIT = 4
# aiocoap's BlockwiseRequest takes the remote's maximum_block_size_exp, MAX_REGULAR_BLOCK_SIZE_EXP = 6
# (2**(6 + 4) = 1024 B), and sends a body of more than that many bytes Block1-wise.
BLOCK_BYTES = 1024

# tinydtls, TLS_PSK_WITH_AES_128_CCM_8 (RFC 6655): 13 B record header (type 1, version 2, epoch 2,
# sequence number 6, length 2; DTLS_RH_LENGTH), 8 B explicit nonce and an 8 B CCM tag.
DTLS_RECORD_OVERHEAD = 13 + 8 + 8

# CoAP framing (RFC 7252 §3) as aiocoap writes it.
_COAP_HEADER = 4  # version, type, token length, code, message id
_COAP_TOKEN = 2  # aiocoap's tokenmanager: a counter from a random 16-bit start, leading zero bytes stripped
_COAP_PAYLOAD_MARKER = 1
_COAP_CONTENT_FORMAT = 2  # option 12 after Uri-Path (11): one header byte, one value byte (60, CBOR)
_COAP_BLOCK1 = 3  # option 27: one header byte, a value of 1 to 3 bytes; 2 covers blocks 16..4095
_COAP_SIZE1 = 4  # option 60, on the first block only: header with a 1-byte extended delta, 2-byte value
# A 2.31 Continue or the final 2.04 Changed: header and token, plus the Block1 option the server
# echoes when the body came in blocks.
_COAP_RESPONSE = _COAP_HEADER + _COAP_TOKEN
# Names of typical length (12 characters) for the pipeline and stage in /hop/<pipeline>/<stage>.
_TYPICAL_PATH = f"{HOP_PATH}/{'p' * 12}/{'s' * 12}"


def _option_header(value_bytes: int) -> int:
    """Bytes of a CoAP option's delta/length header; values of 13 bytes or more need an extension byte."""
    return 1 if value_bytes < 13 else 2 if value_bytes < 269 else 3


def coap_request_overhead(uri_path: str = _TYPICAL_PATH) -> int:
    """CoAP bytes around the body of a POST to ``uri_path``, before any block-wise options."""
    segments = [s.encode() for s in uri_path.strip("/").split("/")]
    path = sum(_option_header(len(s)) + len(s) for s in segments)
    return _COAP_HEADER + _COAP_TOKEN + path + _COAP_CONTENT_FORMAT + _COAP_PAYLOAD_MARKER


@dataclass(frozen=True)
class TransferEstimate:
    """What sending one message costs on one link, and the figures the prediction rests on."""

    payload_bytes: int
    blocks: int
    datagrams: float  # expected datagrams on the air both ways, retransmissions included
    seconds: float  # expected
    basis: str  # one sentence: the model and its figures
    # Until the last block reaches the receiver, which then runs its stage: the exchange minus the
    # final answer's way back, which the sender waits for but the pipeline's result does not.
    arrival_seconds: float = 0.0
    uplink_bytes: float = 0.0  # expected bytes the sender puts on the air, retransmissions included
    downlink_bytes: float = 0.0  # expected bytes of the answers it receives


def predict_transfer(
    payload_bytes: int,
    link: LinkProfile,
    *,
    block_bytes: int = BLOCK_BYTES,
    request_overhead: int | None = None,
    security_overhead: int = DTLS_RECORD_OVERHEAD,
) -> TransferEstimate:
    """Expected time and datagrams for one confirmable POST of ``payload_bytes`` over ``link``.

    ``request_overhead`` is the CoAP bytes around each block (``coap_request_overhead()`` for a typical
    hop path when None); ``security_overhead`` the DTLS record per datagram, 0 for plain CoAP.
    """
    if payload_bytes < 0 or block_bytes <= 0:
        raise ValueError("payload_bytes must be >= 0 and block_bytes > 0")
    overhead = coap_request_overhead() if request_overhead is None else request_overhead
    blocks = max(1, math.ceil(payload_bytes / block_bytes))
    blockwise = payload_bytes > block_bytes
    one_way_s = (link.latency_ms + link.jitter_ms / 2) / 1000
    response_bytes = _COAP_RESPONSE + security_overhead + (_COAP_BLOCK1 if blockwise else 0)
    request_bytes = payload_bytes + blocks * (overhead + security_overhead)
    if blockwise:
        request_bytes += blocks * _COAP_BLOCK1 + _COAP_SIZE1
    # Lock step: every exchange carries one block and waits for its answer before the next starts,
    # so nothing overlaps and the link's queues stay empty.
    exchanges_s = (request_bytes + blocks * response_bytes) * 8 / link.bandwidth_bps
    exchanges_s += blocks * 2 * one_way_s
    # An attempt succeeds when both its request and its response arrive.
    fail = 1 - (1 - link.loss) ** 2
    mean_timeout_s = ACK_TIMEOUT_S * (1 + ACK_RANDOM_FACTOR) / 2
    # Retry j follows j failed attempts and waits mean_timeout × 2**(j-1) after the last of them.
    waiting_s = sum(fail**j * mean_timeout_s * 2 ** (j - 1) for j in range(1, MAX_RETRANSMIT + 1))
    attempts = sum(fail**j for j in range(MAX_RETRANSMIT + 1))
    seconds = exchanges_s + blocks * waiting_s
    datagrams = blocks * attempts * (1 + (1 - link.loss))
    basis = (
        f"predicted: {blocks} Block1 exchange{'s' if blocks != 1 else ''} of ≤{block_bytes} B "
        f"over {link.name} ({_rate(link.bandwidth_bps)}, {link.latency_ms:g}+{link.jitter_ms / 2:g} ms "
        f"one way, {link.loss * 100:g} % loss each way, CoAP ACK_TIMEOUT {ACK_TIMEOUT_S:g} s × "
        f"{(1 + ACK_RANDOM_FACTOR) / 2:g} mean random factor, {security_overhead} B DTLS + "
        f"~{overhead + (_COAP_BLOCK1 if blockwise else 0)} B CoAP per request datagram)"
    )
    return TransferEstimate(
        payload_bytes=payload_bytes,
        blocks=blocks,
        datagrams=datagrams,
        seconds=seconds,
        basis=basis,
        arrival_seconds=max(0.0, seconds - response_bytes * 8 / link.bandwidth_bps - one_way_s),
        uplink_bytes=request_bytes * attempts,
        downlink_bytes=blocks * response_bytes * attempts * (1 - link.loss),
    )


def _rate(bps: int) -> str:
    for unit, size in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= size:
            return f"{bps / size:g} {unit}"
    return f"{bps} bit/s"
