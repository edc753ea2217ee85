"""The registry: shipped data, validation messages, generator, lookups and the CLI."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from shared.errors import PermanentError
from shared.registry import Registry, RegistryError, StaffRole, UnknownEntity, load_registry, parse_registry
from shared.settings import PROJECT_ROOT
from tools.registry.cli import registry_app
from tools.registry.generator import (
    changjia_document,
    changjia_town,
    dump_yaml,
    generate_county_registry,
    write_county_registry,
)

REGISTRY_DIR = PROJECT_ROOT / "deploy" / "config" / "registry"
CHANGJIA = REGISTRY_DIR / "changjia.yaml"
COUNTY_DIR = REGISTRY_DIR / "county"
CATEGORIES = {
    "public_opinion",
    "dispute",
    "safety_hazard",
    "policy_publicity",
    "service_proxy",
    "living_environment",
    "other",
}
TOWN_DEPARTMENT_SLUGS = {
    "party_building",
    "civil_affairs",
    "comprehensive_governance",
    "petitions",
    "agriculture",
    "emergency_safety",
    "judicial_mediation",
    "human_resources",
    "environment",
    "service_center",
    "publicity",
}
COUNTY_DEPARTMENTS = {
    "county.emergency",
    "county.public_security",
    "county.civil_affairs",
    "county.environment",
    "county.petitions",
}


@pytest.fixture(scope="module")
def changjia() -> Registry:
    return load_registry(CHANGJIA)


def write(path: Path, document: Any) -> Path:
    path.write_text(dump_yaml(document), encoding="utf-8")
    return path


def load_error(*paths: Path) -> str:
    with pytest.raises(RegistryError) as info:
        load_registry(*paths)
    return str(info.value)


# ------------------------------------------------------------------ the shipped Changjia registry


@pytest.mark.unit
def test_changjia_has_the_articles_grids_leaders_and_members(changjia: Registry) -> None:
    assert changjia.town_ids == ("changjia",)
    assert changjia.count_grids() == changjia.count_grids("changjia") == 62
    counts = changjia.counts("changjia")
    assert (counts.village_grids, counts.community_grids) == (61, 1)
    assert changjia.count_leaders() == 62
    assert changjia.count_members() == 106
    assert changjia.count_instructors("changjia") == 12
    grids = changjia.all_grids()
    assert [g.grid_id for g in grids] == [f"changjia-g{n:03d}" for n in range(1, 63)]
    assert grids[-1].kind == "community" and all(g.kind == "village" for g in grids[:-1])
    assert sorted(len(g.members) for g in grids).count(1) == 18
    assert {len(g.members) for g in grids} == {1, 2}
    assert all(2 <= len(g.micro_grids) <= 4 for g in grids)
    assert changjia.count_micro_grids() == changjia.count_micro_grid_members() == sum(len(g.micro_grids) for g in grids)


@pytest.mark.unit
def test_changjia_staff_ids_roles_and_departments(changjia: Registry) -> None:
    grid = changjia.grid("changjia-g017")
    assert (grid.name, grid.name_zh) == ("Village grid 17", "第17村网格")
    assert grid.leader.staff_id == "changjia-g017-leader" and grid.leader.role is StaffRole.GRID_LEADER
    assert grid.members[0].staff_id == "changjia-g017-member1"
    assert grid.micro_grids[0].micro_grid_id == "changjia-g017-m1"
    assert grid.micro_grids[0].member.staff_id == "changjia-g017-m1-staff"
    assert grid.micro_grids[0].member.micro_grid_id == "changjia-g017-m1"
    assert changjia.grid("changjia-g062").name_zh == "驻地社区网格"
    town = changjia.town("changjia")
    assert {d.department_id for d in town.departments} == {f"changjia.{s}" for s in TOWN_DEPARTMENT_SLUGS}
    assert {d.department_id for d in changjia.county_departments} == COUNTY_DEPARTMENTS
    assert all(set(d.categories) <= CATEGORIES and d.categories for d in changjia.all_departments())
    assert town.facts.overall_grids == 1
    assert changjia.county_id == "qingyun"
    covered = [g for s in town.supervisors for g in s.grids]
    assert sorted(covered) == [g.grid_id for g in changjia.all_grids()]  # each grid exactly once


@pytest.mark.unit
def test_changjia_has_the_articles_volunteers_in_squads_without_names(changjia: Registry) -> None:
    counts = changjia.counts("changjia")
    assert (counts.volunteers, counts.squads) == (1447, 186)
    assert all(len(g.squads) == 3 and g.volunteers > 0 for g in changjia.all_grids())
    squad = changjia.squad("changjia-g017-s1")
    assert (squad.grid_id, squad.kind) == ("changjia-g017", "assault")
    assert set(squad.model_dump()) == {"squad_id", "grid_id", "kind", "size"}  # sizes, never people


@pytest.mark.unit
def test_changjia_service_catalogue_has_fifty_items_each_with_a_known_department(changjia: Registry) -> None:
    items = changjia.service_catalogue("changjia")
    assert len(items) == changjia.counts("changjia").service_items == 50
    assert len({i.code for i in items}) == 50
    assert {i.category.value for i in items} == CATEGORIES - {"other"}
    assert all(changjia.has_department(i.department) for i in items)
    allowance = changjia.service_item("changjia", "minimum_living_allowance")
    assert (allowance.name_zh, allowance.department) == ("低保申请代办", "changjia.civil_affairs")
    assert [a.code for a in allowance.attributes if a.required] == ["household_size"]
    with pytest.raises(UnknownEntity, match=r"unknown service item 'minimum_living_allowanse'.*did you mean"):
        changjia.service_item("changjia", "minimum_living_allowanse")


@pytest.mark.unit
def test_service_item_with_an_unknown_category_is_refused_naming_the_item(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc["towns"][0]["service_items"][3]["category"] = "welfare"
    path = write(tmp_path / "bad.yaml", doc)
    (line,) = [x for x in load_error(path).splitlines() if "service_items[3]" in x]
    assert line.startswith(f"{path}: towns[0].service_items[3] (disability_subsidy): category: Input should be")


@pytest.mark.unit
def test_service_item_with_an_unknown_town_department_is_refused(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc["towns"][0]["service_items"][0]["department"] = "changjia.welfare"
    message = load_error(write(tmp_path / "bad.yaml", doc))
    assert "service_items[0].department: unknown department 'changjia.welfare' for town 'changjia'" in message


@pytest.mark.unit
def test_service_item_with_an_unknown_county_department_is_refused(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc["towns"][0]["service_items"][0]["department"] = "county.welfare"
    path = write(tmp_path / "bad.yaml", doc)
    assert load_error(path) == (
        f"{path}: towns[0].service_items[0] (minimum_living_allowance): department: "
        "unknown department 'county.welfare' (not a county department)"
    )


@pytest.mark.unit
def test_duplicate_service_item_codes_are_refused(tmp_path: Path, doc: dict[str, Any]) -> None:
    items = doc["towns"][0]["service_items"]
    items.append(copy.deepcopy(items[0]))
    message = load_error(write(tmp_path / "dup.yaml", doc))
    assert "service_items[50].code: duplicate service item code 'minimum_living_allowance'" in message


@pytest.mark.unit
def test_squad_outside_its_grid_is_refused(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc["towns"][0]["grids"][16]["squads"][0]["squad_id"] = "changjia-g018-s1"
    message = load_error(write(tmp_path / "bad.yaml", doc))
    assert "squad_id: 'changjia-g018-s1' must start with its grid id 'changjia-g017-'" in message


@pytest.mark.unit
def test_changjia_yaml_is_what_the_generator_writes() -> None:
    assert yaml.safe_load(CHANGJIA.read_text(encoding="utf-8")) == changjia_document()


@pytest.mark.unit
def test_default_path_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GW_REGISTRY_PATH", raising=False)
    assert load_registry().count_grids() == 62
    monkeypatch.setenv("GW_REGISTRY_PATH", str(COUNTY_DIR))
    assert len(load_registry().towns) == 10


# ------------------------------------------------------------------ lookups


@pytest.mark.unit
def test_lookups(changjia: Registry) -> None:
    assert changjia.town("changjia").name_zh == "常家镇"
    assert changjia.micro_grid("changjia-g017-m2").grid_id == "changjia-g017"
    assert changjia.staff("changjia-g017-member1").role is StaffRole.GRID_MEMBER
    assert changjia.staff("changjia-instructor-04").grids[1] == "changjia-g017"
    assert [s.staff_id for s in changjia.supervisors_of_grid("changjia-g017")] == ["changjia-instructor-04"]
    assert changjia.department("county.emergency").name_zh == "县应急管理局"
    assert changjia.has_department("changjia.civil_affairs") and not changjia.has_department("changjia.nope")
    assert changjia.has_grid("changjia-g001") and not changjia.has_grid("changjia-g063")
    ids = [d.department_id for d in changjia.departments_of_town("changjia")]
    assert len(ids) == 16 and ids[-5:] == [d.department_id for d in changjia.county_departments]
    leaders = changjia.staff_of_grid("changjia-g017", StaffRole.GRID_LEADER)
    assert [s.staff_id for s in leaders] == ["changjia-g017-leader"]
    assert len(changjia.all_departments()) == 16


@pytest.mark.unit
@pytest.mark.parametrize(
    ("method", "entity_id", "kind"),
    [
        ("grid", "changjia-g099", "grid"),
        ("town", "changjai", "town"),
        ("micro_grid", "changjia-g017-m9", "micro-grid"),
        ("department", "changjia.civil_afairs", "department"),
        ("staff", "changjia-g017-member9", "staff member"),
        ("departments_of_town", "nowhere", "town"),
        ("supervisors_of_grid", "changjia-g000", "grid"),
        ("counts", "nowhere", "town"),
    ],
)
def test_unknown_id_raises_a_clear_error(changjia: Registry, method: str, entity_id: str, kind: str) -> None:
    with pytest.raises(UnknownEntity) as info:
        getattr(changjia, method)(entity_id)
    assert (info.value.kind, info.value.entity_id) == (kind, entity_id)
    assert str(info.value).startswith(f"unknown {kind} {entity_id!r}")
    assert isinstance(info.value, KeyError) and isinstance(info.value, PermanentError)


@pytest.mark.unit
def test_unknown_id_suggests_a_close_one(changjia: Registry) -> None:
    with pytest.raises(KeyError, match=r"did you mean 'changjia\.civil_affairs'"):
        changjia.department("changjia.civil_afairs")


@pytest.mark.unit
def test_registry_is_frozen(changjia: Registry) -> None:
    with pytest.raises(ValidationError):
        changjia.grid("changjia-g001").leader.staff_id = "x"  # type: ignore[misc]


# ------------------------------------------------------------------ broken registries


@pytest.fixture
def doc() -> dict[str, Any]:
    """The shipped changjia.yaml as a plain document, to break on purpose."""
    loaded: dict[str, Any] = yaml.safe_load(CHANGJIA.read_text(encoding="utf-8"))
    return loaded


@pytest.mark.unit
def test_grid_without_leader_names_file_entry_and_field(tmp_path: Path, doc: dict[str, Any]) -> None:
    del doc["towns"][0]["grids"][16]["leader"]
    path = write(tmp_path / "broken.yaml", doc)
    message = load_error(path)
    assert f"{path}: towns[0].grids[16] (changjia-g017): leader: Field required" in message.splitlines()


@pytest.mark.unit
def test_duplicated_grid_id_names_both_entries(tmp_path: Path, doc: dict[str, Any]) -> None:
    grids = doc["towns"][0]["grids"]
    grids.insert(17, copy.deepcopy(grids[16]))
    path = write(tmp_path / "dup.yaml", doc)
    first = load_error(path).splitlines()[0]
    assert first.startswith(f"{path}: towns[0].grids[17] (changjia-g017): grid_id: duplicate id 'changjia-g017'")
    assert f"already used by {path}: towns[0].grids[16] (changjia-g017)" in first


@pytest.mark.unit
def test_duplicate_across_files_names_both_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", yaml.safe_load(CHANGJIA.read_text(encoding="utf-8")))
    b = write(tmp_path / "b.yaml", {"towns": yaml.safe_load(CHANGJIA.read_text(encoding="utf-8"))["towns"]})
    message = load_error(a, b)
    assert message.startswith(f"{b}: towns[0] (changjia): town_id: duplicate id 'changjia', already used by {a}")


@pytest.mark.unit
def test_yaml_syntax_error_has_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("county:\n  county_id: qingyun\n  name: [unclosed\ntowns: []\n", encoding="utf-8")
    message = load_error(path)
    assert message.startswith(f"{path}: line ")
    assert "YAML syntax error" in message


@pytest.mark.unit
def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("county: {county_id: qingyun, name: Q, name_zh: Q}\ncounty: {}\n", encoding="utf-8")
    assert re.match(
        rf"{re.escape(str(path))}: line 2, column 1: YAML syntax error: found duplicate key 'county'", load_error(path)
    )


@pytest.mark.unit
def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such file or directory"
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    assert "the file is empty" in load_error(tmp_path / "empty.yaml")
    empty_dir = tmp_path / "d"
    empty_dir.mkdir()
    assert "holds no *.yaml files" in load_error(empty_dir)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["towns"][0]["grids"][2].update(grid_id="changjia-3"),
            "towns[0].grids[2] (changjia-3): grid_id: 'changjia-3' is not a valid grid id",
        ),
        (
            lambda d: d["towns"][0]["grids"][2].update(
                leader={"staff_id": "changjia-g004-leader", "grid_id": "changjia-g004"}
            ),
            "towns[0].grids[2] (changjia-g003): leader.grid_id: 'changjia-g004' does not match its grid",
        ),
        (
            lambda d: d["towns"][0]["grids"][2].update(
                leader={"staff_id": "changjia-g003-leader", "role": "grid_member"}
            ),
            "towns[0].grids[2] (changjia-g003): leader.role: expected 'grid_leader', got 'grid_member'",
        ),
        (
            lambda d: d["towns"][0]["grids"][2].update(leader=["changjia-g003-a", "changjia-g003-b"]),
            "towns[0].grids[2] (changjia-g003): leader: Input should be a valid dictionary",
        ),
        (
            lambda d: d["towns"][0]["grids"][2]["micro_grids"][1].update(micro_grid_id="changjia-g004-m2"),
            "towns[0].grids[2].micro_grids[1] (changjia-g004-m2): micro_grid_id: 'changjia-g004-m2' must start with",
        ),
        (
            lambda d: d["towns"][0]["departments"][0].update(department_id="town02.party_building"),
            "towns[0] (changjia): departments[0].department_id: 'town02.party_building' must start with 'changjia.'",
        ),
        (
            lambda d: d["towns"][0]["departments"][0].update(categories=["gossip"]),
            "towns[0].departments[0] (changjia.party_building): categories[0]: Input should be",
        ),
        (
            lambda d: d["county"]["departments"][0].update(department_id="qingyun.emergency"),
            "county: departments[0].department_id: 'qingyun.emergency' must start with 'county.'",
        ),
        (
            lambda d: d["towns"][0]["instructors"][0]["grids"].append("changjia-g099"),
            "towns[0] (changjia): instructors[0].grids: not grids of this town: changjia-g099",
        ),
        (
            lambda d: d["towns"][0]["grids"][5].update(kind="city"),
            "towns[0].grids[5] (changjia-g006): kind: Input should be 'village' or 'community'",
        ),
        (lambda d: d["towns"][0].update(mayor="x"), "towns[0] (changjia): mayor: Extra inputs are not permitted"),
    ],
)
def test_invalid_entries_are_reported_precisely(
    tmp_path: Path, doc: dict[str, Any], mutate: Any, expected: str
) -> None:
    mutate(doc)
    path = write(tmp_path / "bad.yaml", doc)
    message = load_error(path)
    assert f"{path}: {expected}" in message, message


@pytest.mark.unit
def test_county_block_must_agree_and_exist(tmp_path: Path, doc: dict[str, Any]) -> None:
    towns_only = write(tmp_path / "towns.yaml", {"towns": doc["towns"]})
    assert "no file has the county block" in load_error(towns_only)
    other = copy.deepcopy(doc["county"])
    other["name"] = "Another County"
    county = write(tmp_path / "county.yaml", {"county": other})
    assert load_error(CHANGJIA, county).startswith(f"{county}: county: differs from the county block in ")


@pytest.mark.unit
def test_include_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", {"include": ["../nowhere.yaml"]})
    assert load_error(path) == f"{path}: include[0]: no such file or directory '../nowhere.yaml'"


@pytest.mark.unit
def test_model_validate_also_rejects_duplicates(doc: dict[str, Any]) -> None:
    doc["towns"][0]["grids"][1]["leader"] = "changjia-g002-member1"
    with pytest.raises(ValidationError, match=r"duplicate id 'changjia-g002-member1'"):
        Registry.model_validate({"county": doc["county"], "towns": doc["towns"]})
    with pytest.raises(RegistryError, match=r"<registry>: towns\[0\]\.grids\[1\] \(changjia-g002\): members\[0\]"):
        parse_registry(doc)


# ------------------------------------------------------------------ the county generator


@pytest.mark.unit
def test_generator_is_deterministic_and_county_sized() -> None:
    first = generate_county_registry(towns=10, seed=1)
    assert first == generate_county_registry(towns=10, seed=1)
    assert first != generate_county_registry(towns=10, seed=2)
    towns = first["towns"]
    assert len(towns) == 10 and towns[0] == changjia_town()
    assert [t["town_id"] for t in towns[1:]] == [f"town{n:02d}" for n in range(2, 11)]
    assert all(25 <= len(t["grids"]) <= 60 for t in towns[1:])
    registry = parse_registry(first)
    assert 300 <= registry.count_grids() <= 700
    assert registry.count_leaders() == registry.count_grids()
    assert {d.department_id.split(".", 1)[1] for d in registry.departments_of_town("town05")} >= TOWN_DEPARTMENT_SLUGS
    assert all(registry.count_instructors(t) >= 1 for t in registry.town_ids)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32), towns=st.integers(min_value=1, max_value=12))
@pytest.mark.unit
def test_any_generated_county_is_valid(seed: int, towns: int) -> None:
    registry = parse_registry(generate_county_registry(towns=towns, seed=seed))
    assert len(registry.towns) == towns
    assert registry.count_grids("changjia") == 62 and registry.count_members("changjia") == 106
    for town in registry.towns:
        assert sorted(g for s in town.instructors for g in s.grids) == sorted(g.grid_id for g in town.grids)


@pytest.mark.unit
def test_written_county_loads_and_links_changjia(tmp_path: Path) -> None:
    changjia_file = write(tmp_path / "changjia.yaml", changjia_document())
    out = tmp_path / "county"
    written = write_county_registry(out, towns=4, seed=7, changjia=changjia_file)
    assert sorted(p.name for p in written) == ["county.yaml", "town02.yaml", "town03.yaml", "town04.yaml"]
    assert yaml.safe_load((out / "county.yaml").read_text(encoding="utf-8"))["include"] == ["../changjia.yaml"]
    from_dir = load_registry(out)
    expected = parse_registry(generate_county_registry(towns=4, seed=7))
    assert from_dir.model_dump() == expected.model_dump()
    # Changjia given twice (directly and through the include) is read once
    assert load_registry(changjia_file, out).model_dump() == expected.model_dump()


@pytest.mark.unit
def test_written_county_embedding_changjia_and_regeneration(tmp_path: Path) -> None:
    out = tmp_path / "county"
    write_county_registry(out, towns=5, seed=3)
    first = {p.name: p.read_bytes() for p in out.glob("*.yaml")}
    assert "changjia.yaml" in first and len(first) == 6
    (out / "keep.txt").write_text("not ours", encoding="utf-8")
    write_county_registry(out, towns=3, seed=3)  # fewer towns: stale generated files go away
    assert sorted(p.name for p in out.iterdir()) == [
        "changjia.yaml",
        "county.yaml",
        "keep.txt",
        "town02.yaml",
        "town03.yaml",
    ]
    write_county_registry(out, towns=5, seed=3)
    assert {p.name: p.read_bytes() for p in out.glob("*.yaml")} == first  # byte-identical
    assert load_registry(out).count_grids("changjia") == 62


@pytest.mark.unit
def test_shipped_county_directory_is_the_seed_1_county(tmp_path: Path) -> None:
    write_county_registry(tmp_path, towns=10, seed=1, changjia=CHANGJIA)
    names = sorted(p.name for p in tmp_path.glob("*.yaml"))
    assert sorted(p.name for p in COUNTY_DIR.glob("*.yaml")) == names
    for name in names:
        shipped, fresh = ((d / name).read_text(encoding="utf-8") for d in (COUNTY_DIR, tmp_path))
        if name == "county.yaml":  # same but for the include path, relative to where it was written
            assert "include: [../changjia.yaml]" in shipped
            shipped, fresh = (re.sub(r"(?m)^include: .*$", "", t) for t in (shipped, fresh))
        assert shipped == fresh, f"{name} differs: run gridwhistle registry generate-county"
    county = load_registry(COUNTY_DIR)
    assert len(county.towns) == 10 and county.count_grids("changjia") == 62
    assert county.model_dump() == load_registry(CHANGJIA, COUNTY_DIR).model_dump()


# ------------------------------------------------------------------ CLI


@pytest.mark.unit
def test_cli_check_show_and_generate(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(registry_app, ["check", str(CHANGJIA)])
    assert ok.exit_code == 0 and "1 towns, 62 grids, 62 leaders, 106 members" in ok.output
    assert "186 volunteer squads (1447 people), 50 service items" in ok.output
    doc = yaml.safe_load(CHANGJIA.read_text(encoding="utf-8"))
    del doc["towns"][0]["grids"][16]["leader"]
    bad = write(tmp_path / "bad.yaml", doc)
    failed = runner.invoke(registry_app, ["check", str(bad)])
    assert failed.exit_code == 1
    assert "towns[0].grids[16] (changjia-g017): leader: Field required" in failed.output
    shown = runner.invoke(registry_app, ["show", str(CHANGJIA)], terminal_width=200)
    assert shown.exit_code == 0 and "106" in shown.output
    out = tmp_path / "county"
    generated = runner.invoke(
        registry_app,
        ["generate-county", "--towns", "3", "--seed", "5", "--out", str(out), "--changjia", str(CHANGJIA)],
        terminal_width=200,
    )
    assert generated.exit_code == 0, generated.output
    assert len(load_registry(out).towns) == 3
