"""The registry: county, towns, grids, micro-grids, staff and departments, loaded from YAML.

Usage::

    from shared.registry import Registry, RegistryError, load_registry
    registry = load_registry()  # GwSettings().registry_path (a file or a directory)
    registry.grid("changjia-g017").leader.staff_id  # 'changjia-g017-leader'

Files and merging
-----------------
``load_registry(*paths)`` loads one or more files; a directory stands for every ``*.yaml``/``*.yml``
directly inside it, sorted by name. A file may carry any of these top-level keys:

``schema_version`` (``1``), ``include`` (paths relative to this file, loaded before it),
``county`` (the county block) and ``towns`` (a list of towns). Everything loaded is merged into
one registry. Exactly one county is required: several files may carry the county block only if
it is identical (so ``changjia.yaml`` carries it and loads alone, and the generated county
directory carries it too). A file reached twice (an include and a direct path) is read once.

Shipped data:

* ``deploy/config/registry/changjia.yaml`` - Qingyun County block + Changjia (62 grids).
* ``deploy/config/registry/county/`` - a county for scale tests: ``county.yaml``
  (county block + ``include: [../changjia.yaml]``) and ``town02.yaml`` ... ``town10.yaml``,
  scaffolded once by ``tools/registry/generator.py``.
  Point ``GW_REGISTRY_PATH`` at the directory to run the whole county (10 towns).

These checked-in files are the registry's source of truth: the services load them as they are,
and nothing at run time or in the tests writes them.

Schema (ids are lowercase slugs; nothing may contain ``.`` except department ids)::

    county: {county_id: qingyun, name, name_zh,
             departments: [{department_id: county.<slug>, name, name_zh, categories: [...]}]}
    towns:
      - town_id: changjia                       # [a-z][a-z0-9]{1,31}; "county" is reserved
        name: Changjia Town
        name_zh: 常家镇
        facts: {overall_grids: 1}                 # optional
        departments: [{department_id: changjia.<slug>, name, name_zh, categories: [...]}]
        instructors: [{staff_id: changjia-instructor-01, grids: [changjia-g001, ...]}]
        service_items:                            # the town's service catalogue (optional)
          - code: minimum_living_allowance        # [a-z][a-z0-9_]{2,63}, unique in the town
            name: Minimum living allowance application (proxy)
            name_zh: 低保申请代办
            category: service_proxy               # one of the seven categories
            department: changjia.civil_affairs    # handles it by default (the town's or a county.*)
            accept_hours: 24                      # deadlines of the item's department routes
            resolve_days: 10
            attributes: [{code: household_size, description: ..., datatype: number, required: true}]
        grids:
          - grid_id: changjia-g017              # <town_id>-g<3-4 digits>
            kind: village                        # or community
            name: Village grid 17
            name_zh: 第17村网格
            leader: changjia-g017-leader         # exactly one
            members: [changjia-g017-member1, changjia-g017-member2]
            micro_grids:                          # at least one, each with one member
              - {micro_grid_id: changjia-g017-m1, member: changjia-g017-m1-staff}
            squads:                               # volunteer squads: sizes only, no names
              - {squad_id: changjia-g017-s1, kind: assault, size: 9}   # assault | vanguard | reserve

A staff member may be written as a bare id (as above) or as a mapping ``{staff_id, role,
town_id, grid_id, micro_grid_id}``; omitted ``role``/``town_id``/``grid_id``/``micro_grid_id`` are
taken from where the entry sits, and anything written must agree with it. Categories are the
``shared.domain.Category`` values. Validation: well-formed ids, every id unique across the whole
registry, one leader per grid, staff and micro-grid ids prefixed by their grid id, instructor ids
by their town id, department ids by their town id (or ``county.``), instructors' grids exist,
squad ids prefixed by their grid id, service item codes unique within their town, each item's
category one of the seven and its department a department of the town or of the county.
"""

from shared.registry.core import Counts, Registry, UnknownEntity
from shared.registry.loader import RegistryError, load_registry, parse_registry
from shared.registry.models import (
    County,
    Department,
    Grid,
    MicroGrid,
    ServiceAttribute,
    ServiceItem,
    Squad,
    StaffMember,
    StaffRole,
    Town,
    TownFacts,
)

__all__ = [
    "Counts",
    "County",
    "Department",
    "Grid",
    "MicroGrid",
    "Registry",
    "RegistryError",
    "ServiceAttribute",
    "ServiceItem",
    "Squad",
    "StaffMember",
    "StaffRole",
    "Town",
    "TownFacts",
    "UnknownEntity",
    "load_registry",
    "parse_registry",
]
