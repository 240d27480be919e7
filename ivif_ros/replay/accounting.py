"""Where every input message of a replay went.

A replay is only trustworthy if nothing disappears silently: each IR and visible
message read from the bag ends in exactly one state,

* ``fused``   - it entered a pair and the pair produced a fused frame;
* ``dropped`` - with a reason, either before pairing (``unpaired``: no partner within
  the sync tolerance; ``decode_error``; ...) or after it (the pair never produced a
  fused frame: ``pipeline_error``, ``no_output`` in live mode, ...).

The ledger enforces that (a message cannot be both paired and dropped, or dropped twice),
and :meth:`MessageLedger.counts` reports the two invariants the report relies on::

    inputs = paired messages + messages dropped before pairing
    pairs  = fused frames    + pairs dropped after pairing
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

# Drop reasons that the replay itself assigns. The sync policy may add its own.
UNPAIRED = "unpaired"  # no partner message within the sync tolerance
DECODE_ERROR = "decode_error"  # the message could not be turned into an image
TRUNCATED = "bag_truncated"  # read stopped at a corrupt/truncated part of the bag
PIPELINE_ERROR = "pipeline_error"  # the pair reached the pipeline, which raised
NO_OUTPUT = "no_output"  # live: the pair was published but the graph never answered


@dataclass
class InputMessage:
    topic: str
    stamp_ns: int  # header stamp: what the pairing policy and the outputs refer to
    log_ns: int  # bag receive time: what replay timing follows
    pair_id: int | None = None
    drop_reason: str | None = None


@dataclass
class PairEntry:
    ir: int  # message ids in the ledger
    vis: int
    stamp_ns: int  # stamp the pipeline gives the fused frame
    fused: bool = False
    drop_reason: str | None = None


class AccountingError(RuntimeError):
    """A replay tried to give a message two fates: a bug, not a data problem."""


class MessageLedger:
    """The fate of every input message of one replay."""

    def __init__(self) -> None:
        self.messages: list[InputMessage] = []
        self.pairs: list[PairEntry] = []

    def add_input(self, topic: str, stamp_ns: int, log_ns: int) -> int:
        """Register a message read from the bag; returns its id."""
        self.messages.append(InputMessage(topic, int(stamp_ns), int(log_ns)))
        return len(self.messages) - 1

    def drop(self, msg_id: int, reason: str) -> None:
        """A message that will never be part of a pair."""
        m = self.messages[msg_id]
        if m.pair_id is not None or m.drop_reason is not None:
            raise AccountingError(f"message {msg_id} on {m.topic} already has a fate")
        m.drop_reason = reason

    def pair(self, ir_id: int, vis_id: int, stamp_ns: int) -> int:
        """Two messages the sync policy matched; returns the pair id."""
        pair_id = len(self.pairs)
        for msg_id in (ir_id, vis_id):
            m = self.messages[msg_id]
            if m.pair_id is not None or m.drop_reason is not None:
                raise AccountingError(f"message {msg_id} on {m.topic} already has a fate")
            m.pair_id = pair_id
        self.pairs.append(PairEntry(ir_id, vis_id, int(stamp_ns)))
        return pair_id

    def fused(self, pair_id: int) -> None:
        p = self.pairs[pair_id]
        if p.fused or p.drop_reason is not None:
            raise AccountingError(f"pair {pair_id} already has a fate")
        p.fused = True

    def drop_pair(self, pair_id: int, reason: str) -> None:
        p = self.pairs[pair_id]
        if p.fused or p.drop_reason is not None:
            raise AccountingError(f"pair {pair_id} already has a fate")
        p.drop_reason = reason

    def unresolved(self) -> tuple[list[int], list[int]]:
        """Ids of messages with no fate yet and of pairs neither fused nor dropped."""
        msgs = [i for i, m in enumerate(self.messages) if m.pair_id is None and m.drop_reason is None]
        pairs = [i for i, p in enumerate(self.pairs) if not p.fused and p.drop_reason is None]
        return msgs, pairs

    def counts(self) -> dict:
        """The accounting table of ``summary.json`` (see the module docstring)."""
        per_topic: dict[str, Counter] = {}
        for m in self.messages:
            c = per_topic.setdefault(m.topic, Counter())
            c["received"] += 1
            if m.pair_id is not None:
                c["paired"] += 1
                p = self.pairs[m.pair_id]
                c["fused" if p.fused else "dropped"] += 1
            else:
                c["dropped"] += 1
        msg_drops = Counter(m.drop_reason for m in self.messages if m.drop_reason is not None)
        pair_drops = Counter(p.drop_reason for p in self.pairs if p.drop_reason is not None)
        unresolved_msgs, unresolved_pairs = self.unresolved()
        return {
            "inputs": len(self.messages),
            "inputs_by_topic": {
                t: dict(received=c["received"], paired=c["paired"], fused=c["fused"], dropped=c["dropped"])
                for t, c in per_topic.items()
            },
            "paired_messages": sum(m.pair_id is not None for m in self.messages),
            "dropped_messages": sum(msg_drops.values()),
            "message_drops_by_reason": dict(sorted(msg_drops.items())),
            "pairs": len(self.pairs),
            "fused": sum(p.fused for p in self.pairs),
            "dropped_pairs": sum(pair_drops.values()),
            "pair_drops_by_reason": dict(sorted(pair_drops.items())),
            "unaccounted_messages": len(unresolved_msgs),
            "unaccounted_pairs": len(unresolved_pairs),
        }
