"""Dramatiq's Prometheus middleware, with its count of delayed messages made to pair up.

Dramatiq (2.2.1) adds a message's id to `delayed_messages` and raises
`dramatiq_delayed_messages_inprogress` when a process takes the message off a delay
queue (`webhooks.DQ`), and removes both only when the *same* process later starts the
message. But once its eta passes, the message goes back onto its queue, where any
worker process — of any pod — may take it. With two processes about half the ids stay
in the set forever, and the gauge climbs on the `.DQ` label while the plain label goes
negative (upstream issue Bogdanp/dramatiq#672, still open). Every message we delay
leaks this way: throttled events (a busy team over its dispatch limit is re-enqueued
with a delay, again and again), provisioning runs waiting for their team, retries.

Here the id and the gauge are released where the message leaves this process's
memory: when the delay-queue message is acknowledged (or rejected), which the process
that delayed it always does right after putting the message back on its queue.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.common import current_millis
from dramatiq.middleware.prometheus import Prometheus as DramatiqPrometheus

DELAY_SUFFIX = ".DQ"


class Prometheus(DramatiqPrometheus):
    """Same metrics, same exposition server; only the delayed-message bookkeeping moves.
    No parameters."""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        # Dramatiq's version also releases a delayed id here, but only if this process
        # delayed the message: the id is released at `after_ack` instead (below).
        labels = (message.queue_name, message.actor_name)
        self.inprogress_messages.labels(*labels).inc()
        self.message_start_times[message.message_id] = current_millis()

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self._release_delayed(message)

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        super().after_nack(broker, message)  # type: ignore[no-untyped-call]
        self._release_delayed(message)

    def _release_delayed(self, message: Any) -> None:
        if not message.queue_name.endswith(DELAY_SUFFIX):
            return
        try:
            self.delayed_messages.remove(message.message_id)
        except KeyError:  # never delayed here (a message whose eta was None)
            return
        # The labels of `before_delay_message`: the delay queue's name.
        self.inprogress_delayed_messages.labels(message.queue_name, message.actor_name).dec()
