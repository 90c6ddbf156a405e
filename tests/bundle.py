"""The Databricks bundle's configuration for one target, resolved the way the Databricks CLI does it.

Covers what databricks.yml uses: `include`, target overrides (tasks, job clusters and job parameters
merged by their key, other lists appended), simple and complex (`type: complex`) variables, a target
assigning either kind in the short or the full form, `${var.*}` references to a variable or to a field of
a complex one, `${bundle.*}` and `${workspace.*}` references,
the default workspace paths (always under /Workspace), `run_as`, the development and production modes,
and the annotations the CLI adds to every job before it calls the Jobs API. Anything else (variable
lookups, `${resources.*}`, an unknown target key) raises BundleError rather than resolving differently
from the CLI. Local library paths come out relative to the bundle root (`dist/*.whl`); on deploy the CLI
builds the artifact and puts the uploaded file's workspace path there instead.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")
# Lists the CLI merges item by item on this key when a target overrides a job; other lists are appended.
_MERGE_KEYS = {"tasks": "task_key", "job_clusters": "job_cluster_key", "parameters": "name"}
_TARGET_KEYS = {"default", "mode", "workspace", "variables", "run_as", "resources", "artifacts", "presets"}
_MODES = {"development", "production"}


class BundleError(ValueError):
    """The bundle would not validate, or uses something this resolver does not model."""


@dataclass(frozen=True)
class User:
    """The identity that deploys (`workspace.current_user`)."""

    user_name: str
    is_service_principal: bool = False

    @property
    def short_name(self) -> str:
        """As the CLI derives it: the part before '@', every other character than a letter or digit as '_'."""
        return re.sub(r"[^A-Za-z0-9]", "_", self.user_name.split("@")[0]).lower()


def resolve(target: str, user: User, variables: dict[str, Any] | None = None, root: Path = ROOT) -> dict:
    """`databricks bundle validate -t <target> -o json` for `user`, `variables` acting as `--var name=value`."""
    config = _load(root)
    targets = config.pop("targets", None) or {}
    if target not in targets:
        raise BundleError(f"no target named {target!r}; the bundle has {sorted(targets)}")
    spec = targets[target] or {}
    if unknown := set(spec) - _TARGET_KEYS:
        raise BundleError(f"target {target}: keys this resolver does not model: {sorted(unknown)}")
    mode = spec.get("mode")
    if mode is not None and mode not in _MODES:
        raise BundleError(f"unsupported value '{mode}' specified for 'mode'")
    root_path_set = "root_path" in {**(config.get("workspace") or {}), **(spec.get("workspace") or {})}

    for key in ("workspace", "resources", "artifacts", "presets"):
        if key in spec:
            config[key] = _merge(config.get(key) or {}, spec[key])
    if "run_as" in spec:
        config["run_as"] = spec["run_as"]
    config["variables"] = _variables(config.get("variables") or {}, spec.get("variables") or {}, variables or {})
    config["bundle"] = {**config["bundle"], "target": target, **({"mode": mode} if mode else {})}
    config["workspace"] = _workspace(config.get("workspace") or {}, user)
    jobs = (config.get("resources") or {}).get("jobs") or {}
    for job in jobs.values():
        _merge_by_key(job)

    config = _interpolate(config)
    jobs = config["resources"]["jobs"]
    _apply_run_as(jobs, config.get("run_as"))
    if mode == "development":
        _development(jobs, config["workspace"], user)
    elif mode == "production":
        _production(jobs, user, root_path_set)
    for job in jobs.values():
        _annotate(job, config["workspace"])
    return config


def targets(root: Path = ROOT) -> dict[str, dict]:
    """The targets as databricks.yml declares them, unresolved: name -> its overrides."""
    return {name: spec or {} for name, spec in (_read(root / "databricks.yml").get("targets") or {}).items()}


def job_settings(config: dict, key: str) -> dict:
    """The request body the CLI sends to the Jobs API for job `key` (a JobSettings)."""
    return config["resources"]["jobs"][key]


# --- loading ---------------------------------------------------------------------------------


def _load(root: Path) -> dict:
    config = _read(root / "databricks.yml")
    for pattern in config.pop("include", None) or []:
        for path in sorted(root.glob(pattern)):
            part = _read(path)
            _rebase_libraries(part, path.parent, root)
            for resource_type, resources in (part.pop("resources", None) or {}).items():
                existing = config.setdefault("resources", {}).setdefault(resource_type, {})
                if clash := set(existing) & set(resources):
                    raise BundleError(f"{path}: {resource_type} defined more than once: {sorted(clash)}")
                existing.update(resources)
            if part:
                raise BundleError(f"{path}: only resources are modelled in included files, got {sorted(part)}")
    return config


def _read(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a mapping")
    return data


def _rebase_libraries(part: dict, directory: Path, root: Path) -> None:
    """Local library paths are relative to the file that names them; make them relative to the bundle root."""
    for job in ((part.get("resources") or {}).get("jobs") or {}).values():
        for task in job.get("tasks") or []:
            for library in task.get("libraries") or []:
                for kind in ("whl", "jar", "requirements"):
                    value = library.get(kind)
                    if isinstance(value, str) and not value.startswith("/") and ":" not in value:
                        library[kind] = os.path.relpath(os.path.normpath(directory / value), root)


# --- merging ---------------------------------------------------------------------------------


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = _merge(merged[key], value) if key in merged else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return copy.deepcopy(base) + copy.deepcopy(override)
    return copy.deepcopy(override)


def _merge_by_key(job: dict) -> None:
    for field, key in _MERGE_KEYS.items():
        items = job.get(field)
        if not items:
            continue
        merged: dict[Any, dict] = {}
        for position, item in enumerate(items):
            name = item.get(key, ("unnamed", position))
            merged[name] = _merge(merged[name], item) if name in merged else item
        job[field] = list(merged.values())


# --- variables, workspace paths, references ---------------------------------------------------


# A target's mapping with exactly one of these key sets assigns a variable in the full form
# ({default: ...}); any other mapping is the short form, the value itself (config/root.go rewriteShorthands).
_FULL_OVERRIDES = (
    {"default", "type", "description"},
    {"default", "type"},
    {"default", "description"},
    {"lookup", "description"},
    {"default"},
    {"lookup"},
)


def _variables(declared: dict, from_target: dict, from_command_line: dict) -> dict:
    if undeclared := (set(from_target) | set(from_command_line)) - set(declared):
        raise BundleError(f"variables assigned but not declared: {sorted(undeclared)}")
    resolved = {}
    for name, spec in declared.items():
        spec = dict(spec or {})
        if "lookup" in spec:
            raise BundleError(f"variable {name}: lookups need a workspace and are not modelled")
        complex_ = spec.get("type") == "complex"
        value = spec.get("default")
        if name in from_target:
            assigned = from_target[name]
            if isinstance(assigned, dict) and set(assigned) in _FULL_OVERRIDES:
                if "lookup" in assigned:
                    raise BundleError(f"variable {name}: lookups need a workspace and are not modelled")
                value = assigned["default"]
            elif isinstance(assigned, (dict, list)) and not complex_:
                raise BundleError(f"variable {name} is not of type complex but is assigned a {type(assigned).__name__}")
            else:
                value = assigned
        if name in from_command_line:
            if complex_:
                raise BundleError(f"setting variables of complex type via --var flag is not supported: {name}")
            value = from_command_line[name]
        if value is None:
            raise BundleError(f"no value assigned to required variable {name}")
        if not complex_ and isinstance(value, (dict, list)):
            raise BundleError(f"variable {name} has a {type(value).__name__} value but is not of type complex")
        resolved[name] = {**spec, "value": value}
    for name, variable in resolved.items():
        if variable.get("type") == "complex":
            for reference in _REFERENCE.findall(yaml.safe_dump(variable["value"])):
                head, _, rest = reference.partition(".")
                if head == "var" and resolved.get(rest.split(".")[0], {}).get("type") == "complex":
                    raise BundleError(
                        f"variable {name}: complex variables cannot contain references to another complex variables"
                    )
    return resolved


def _workspace(workspace: dict, user: User) -> dict:
    workspace = dict(workspace)
    workspace["current_user"] = {"userName": user.user_name, "short_name": user.short_name}
    root_path = workspace.get("root_path", "~/.bundle/${bundle.name}/${bundle.target}")
    if root_path.startswith("~/"):
        root_path = f"/Users/{user.user_name}/{root_path[2:]}"
    workspace["root_path"] = _under_workspace(root_path)
    for key, folder in (
        ("file_path", "files"),
        ("artifact_path", "artifacts"),
        ("state_path", "state"),
        ("resource_path", "resources"),
    ):
        workspace[key] = _under_workspace(workspace.get(key, f"{root_path}/{folder}"))
    return workspace


def _under_workspace(path: str) -> str:
    """Since CLI v0.230 every workspace path starts with /Workspace (a path starting with a reference excepted)."""
    if path.startswith(("/Workspace/", "/Volumes/", "${")):
        return path
    return "/Workspace" + path


def _interpolate(config: dict) -> dict:
    for _ in range(10):
        changed = False

        def substitute(value: Any) -> Any:
            nonlocal changed
            if isinstance(value, dict):
                return {key: substitute(item) for key, item in value.items()}
            if isinstance(value, list):
                return [substitute(item) for item in value]
            if not isinstance(value, str) or "${" not in value:
                return value
            whole = _REFERENCE.fullmatch(value)
            if whole:  # a value that is one reference keeps the referenced value's type
                new = _lookup(config, whole.group(1))  # noqa: B023 - called in this pass
            else:
                new = _REFERENCE.sub(lambda match: str(_lookup(config, match.group(1))), value)  # noqa: B023 - called in this pass
            changed = changed or new != value
            return new

        config = substitute(config)
        if not changed:
            break
    if left := sorted(set(_REFERENCE.findall(yaml.safe_dump(config)))):
        raise BundleError(f"references left unresolved (a cycle?): {left}")
    return config


def _lookup(config: dict, reference: str) -> Any:
    head, *rest = reference.split(".")
    if head == "var":
        if not rest or rest[0] not in config["variables"]:
            raise BundleError(f"reference does not exist: ${{{reference}}}")
        node, rest = config["variables"][rest[0]]["value"], rest[1:]
    elif head in ("bundle", "workspace"):
        node = config[head]
    else:
        raise BundleError(f"${{{reference}}}: only var, bundle and workspace references are modelled")
    for part in rest:
        if not isinstance(node, dict) or part not in node:
            raise BundleError(f"reference does not exist: ${{{reference}}}")
        node = node[part]
    return node


# --- run_as, modes, annotations ---------------------------------------------------------------


def _apply_run_as(jobs: dict, run_as: dict | None) -> None:
    if not run_as:
        return
    if len({"user_name", "service_principal_name"} & set(run_as)) != 1 or len(run_as) != 1:
        raise BundleError("run_as takes exactly one of user_name and service_principal_name")
    for job in jobs.values():
        job.setdefault("run_as", dict(run_as))


def _development(jobs: dict, workspace: dict, user: User) -> None:
    for key in ("root_path", "file_path", "artifact_path", "state_path"):
        if user.user_name not in workspace[key]:
            raise BundleError(
                f"{key} must start with '~/' or contain the current username when using 'mode: development'"
            )
    for job in jobs.values():
        job["name"] = f"[dev {user.short_name}] {job['name']}"
        job.setdefault("tags", {}).setdefault("dev", user.short_name)
        job.setdefault("max_concurrent_runs", 4)
        for trigger in ("schedule", "continuous", "trigger"):
            if trigger in job:
                job[trigger].setdefault("pause_status", "PAUSED")


def _production(jobs: dict, user: User, root_path_set: bool) -> None:
    if user.is_service_principal:
        return
    if not root_path_set:
        raise BundleError(
            "target with 'mode: production' must set 'workspace.root_path' to make sure only one copy is deployed"
        )
    if missing := sorted(key for key, job in jobs.items() if "run_as" not in job):
        raise BundleError(f"'run_as' must be set for all jobs when using 'mode: production': {missing}")


def _annotate(job: dict, workspace: dict) -> None:
    job["deployment"] = {"kind": "BUNDLE", "metadata_file_path": f"{workspace['state_path']}/metadata.json"}
    job["edit_mode"] = "UI_LOCKED"
    job["format"] = "MULTI_TASK"
    job.setdefault("queue", {"enabled": True})
