"""The local dev stack: ``gridwhistle stack up|down|status`` and its plain function API.

RabbitMQ (Debian package) with epmd, the Mongo-wire store (SecantusDB's ``secantusd-rs``, built
once per machine from crates.io into ~/.cache) and Prometheus (Debian package), all bound to
127.0.0.1, with state under ``settings.state_dir``.
Nothing happens at import time.

    from tools.stack import stack_up, stack_status, stack_down
    stack_up(GwSettings(), ["rabbitmq", "mongo"])
"""

from tools.stack.cli import console_say, print_stack_error, stack_app
from tools.stack.core import stack_down, stack_status, stack_up
from tools.stack.model import Action, ComponentStatus, SelectionError, StackError, StackUpError, UpResult

__all__ = [
    "Action",
    "ComponentStatus",
    "SelectionError",
    "StackError",
    "StackUpError",
    "UpResult",
    "console_say",
    "print_stack_error",
    "stack_app",
    "stack_down",
    "stack_status",
    "stack_up",
]
