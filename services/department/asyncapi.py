"""The department side's AsyncAPI application object: ``faststream docs gen services.department.asyncapi:app``.

What a department (or grid staff, or a supervisor) integrates with: its work queue on
``gw.dispatch`` and the six commands it sends on ``gw.commands``. Every department has its own
``dept.<department_id>`` queue of the same shape; the document shows one of the registry's.
Built on first access (module ``__getattr__``), never at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.department.client import DepartmentClient
from shared.asyncapi import application, lazy_application
from shared.broker import make_broker
from shared.catalogue import declare_command_publishers
from shared.registry import load_registry
from shared.settings import GwSettings

if TYPE_CHECKING:
    from faststream import FastStream

SERVICE = "department"
DESCRIPTION = (
    "The department side of Gridwhistle: consume your work queue (`dept.<department_id>`, "
    "`grid.<town_id>` for grid staff, `supervision.<town_id>` for supervisors; quorum queues bound on "
    "gw.dispatch) and send commands on gw.commands. Echo the `round` of the MatterDispatched you act on."
)


def build() -> FastStream:
    settings = GwSettings()
    registry = load_registry(settings.registry_path)
    broker = make_broker(settings, service=SERVICE)
    department = next(iter(registry.all_departments())).department_id
    DepartmentClient(broker, department).subscribe()
    declare_command_publishers(broker)
    return application(broker, service=SERVICE, description=DESCRIPTION)


__getattr__ = lazy_application(build)
