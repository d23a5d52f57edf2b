"""Put the message id in the log context while a message is processed, so every log
line a job writes can be traced back to its message."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq import Middleware

from orchestrator.logs import message_id_var


class MessageContext(Middleware):
    def before_process_message(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any]
    ) -> None:
        # Worker threads are long-lived; the variable is overwritten per message and
        # cleared after it, so no id leaks into the next message's lines.
        message_id_var.set(message.message_id)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message[Any],
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        message_id_var.set(None)

    after_skip_message = after_process_message
