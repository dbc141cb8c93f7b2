"""pipeflow: declarative, reproducible pipelines for ML and data work.

The public Python API, all importable from here (docs/api.md describes it):

- the project and reading outputs: :class:`Repo`, :func:`open`, :class:`CancelToken`;
- what its methods return: :class:`ReproResult` (with :class:`StageFailure`),
  :class:`ExpRunResult` (with :class:`Experiment`, :class:`ExpStatus`,
  :class:`StageOutcome`), :class:`ExpRow`, :class:`ExpDiff` (with :class:`DiffEntry`),
  :class:`Applied` (with :class:`ParamSet`), :class:`Removed`,
  :class:`Status` (with :class:`StageStatus`), :class:`Version`, and :class:`Lineage`
  (with :class:`LineageArtifact`, :class:`LineageRun`, :class:`RunOutput`,
  :class:`CodeFile`, :class:`Within`, :class:`Trust`, :class:`ExperimentMark`,
  :class:`Nondeterminism`),
  and the registry's :class:`Model` (with :class:`ModelVersion`), :class:`AliasMove`,
  :class:`AliasReport` (with :class:`Alias`, :class:`HistoryMove`), :class:`Noted`,
  and ``reproduce``'s :class:`Reproduction` (with :class:`StageVerdict`,
  :class:`Verdict`, :class:`OutputDiff`, :class:`ValueDiff`, :class:`EnvDifference`);
- the errors: :class:`PipeflowError` and its family (the tree is drawn in
  :mod:`pipeflow.errors`), with :class:`Location` for the place a SpecError or
  ConfigError names.

Each name is imported from its module on first use, so that ``import pipeflow`` (and
``pipeflow --version``) stay instant: not even ``typing`` is loaded.
"""

from __future__ import annotations

_API = ("CancelToken", "ExpRunResult", "Repo", "ReproResult", "StageFailure", "StageStatus",
        "Status", "open")
_LINEAGE = ("CodeFile", "ExperimentMark", "Lineage", "LineageArtifact", "LineageRun",
            "RunOutput", "Within")
_ERRORS = ("Cancelled", "CheckFailed", "ConfigError", "DiskFull", "EnvironmentDiffers",
           "Interrupted", "LocatedError",
           "Location",
           "LockConflictError", "LockedError", "LockfileError", "LockfileWriteError",
           "MissingSourceData", "OutsideProjectError", "PipeflowError", "RepoLockError",
           "SourceConflict", "SpecError", "StageFailed", "StorageError", "TaskFailed", "UsageError")

_HOME: dict[str, str] = {
    **dict.fromkeys(_API, "pipeflow.api"),
    **dict.fromkeys(_LINEAGE, "pipeflow.lineage.model"),
    "Trust": "pipeflow.lineage.trust",
    "Nondeterminism": "pipeflow.lineage.nondeterminism",
    "Origin": "pipeflow.lineage.trust",
    "StageWord": "pipeflow.planning.plan",
    "RecordKind": "pipeflow.records.runrecord",
    "OutputKind": "pipeflow.records.runrecord",
    "__version__": "pipeflow.version",
    "Version": "pipeflow.lineage.versions",
    "Experiment": "pipeflow.lineage.experiments",
    "ExpStatus": "pipeflow.lineage.experiments",
    "StageOutcome": "pipeflow.lineage.experiments",
    "ExpRow": "pipeflow.experiments.table",
    "ExpDiff": "pipeflow.experiments.table",
    "DiffEntry": "pipeflow.experiments.table",
    "Applied": "pipeflow.experiments.apply",
    "ParamSet": "pipeflow.experiments.apply",
    "Removed": "pipeflow.experiments.apply",
    "Model": "pipeflow.registry.catalog",
    "ModelVersion": "pipeflow.registry.catalog",
    "AliasMove": "pipeflow.registry.aliases",
    "AliasReport": "pipeflow.registry.aliaslist",
    "Alias": "pipeflow.registry.aliaslist",
    "HistoryMove": "pipeflow.registry.aliaslist",
    "Noted": "pipeflow.registry.notes",
    "Reproduction": "pipeflow.lineage.reproductions",
    "StageVerdict": "pipeflow.lineage.reproductions",
    "OutputDiff": "pipeflow.lineage.reproductions",
    "ValueDiff": "pipeflow.lineage.reproductions",
    "EnvDifference": "pipeflow.lineage.reproductions",
    "Verdict": "pipeflow.lineage.reproductions",
    **dict.fromkeys(_ERRORS, "pipeflow.errors"),
    "UnsafePathError": "pipeflow.files.safepath",
    "UnsafeProjectError": "pipeflow.project.project",
}
"""Public name -> the module that defines it."""

__all__ = [
    "Alias",
    "AliasMove",
    "AliasReport",
    "Applied",
    "CancelToken",
    "Cancelled",
    "CheckFailed",
    "CodeFile",
    "ConfigError",
    "DiffEntry",
    "DiskFull",
    "EnvDifference",
    "EnvironmentDiffers",
    "ExpDiff",
    "ExpRow",
    "ExpRunResult",
    "ExpStatus",
    "Experiment",
    "ExperimentMark",
    "HistoryMove",
    "Interrupted",
    "Lineage",
    "LineageArtifact",
    "LineageRun",
    "LocatedError",
    "Location",
    "LockConflictError",
    "LockedError",
    "LockfileError",
    "LockfileWriteError",
    "MissingSourceData",
    "Model",
    "ModelVersion",
    "Nondeterminism",
    "Noted",
    "Origin",
    "OutputDiff",
    "OutputKind",
    "OutsideProjectError",
    "ParamSet",
    "PipeflowError",
    "RecordKind",
    "Removed",
    "Repo",
    "RepoLockError",
    "ReproResult",
    "Reproduction",
    "RunOutput",
    "SourceConflict",
    "SpecError",
    "StageFailed",
    "StageFailure",
    "StageOutcome",
    "StageStatus",
    "StageVerdict",
    "StageWord",
    "Status",
    "StorageError",
    "TaskFailed",
    "Trust",
    "UnsafePathError",
    "UnsafeProjectError",
    "UsageError",
    "ValueDiff",
    "Verdict",
    "Version",
    "Within",
    "__version__",
    "open",
]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pipeflow.api import (
        CancelToken,
        ExpRunResult,
        Repo,
        ReproResult,
        StageFailure,
        StageStatus,
        Status,
        open,
    )
    from pipeflow.errors import (
        Cancelled,
        CheckFailed,
        ConfigError,
        DiskFull,
        EnvironmentDiffers,
        Interrupted,
        LocatedError,
        Location,
        LockConflictError,
        LockedError,
        LockfileError,
        LockfileWriteError,
        MissingSourceData,
        OutsideProjectError,
        PipeflowError,
        RepoLockError,
        SourceConflict,
        SpecError,
        StageFailed,
        StorageError,
        TaskFailed,
        UsageError,
    )
    from pipeflow.experiments.apply import Applied, ParamSet, Removed
    from pipeflow.experiments.table import DiffEntry, ExpDiff, ExpRow
    from pipeflow.files.safepath import UnsafePathError
    from pipeflow.lineage.experiments import Experiment, ExpStatus, StageOutcome
    from pipeflow.lineage.model import (
        CodeFile,
        ExperimentMark,
        Lineage,
        LineageArtifact,
        LineageRun,
        RunOutput,
        Within,
    )
    from pipeflow.lineage.nondeterminism import Nondeterminism
    from pipeflow.lineage.reproductions import (
        EnvDifference,
        OutputDiff,
        Reproduction,
        StageVerdict,
        ValueDiff,
        Verdict,
    )
    from pipeflow.lineage.trust import Origin, Trust
    from pipeflow.lineage.versions import Version
    from pipeflow.planning.plan import StageWord
    from pipeflow.project.project import UnsafeProjectError
    from pipeflow.records.runrecord import OutputKind, RecordKind
    from pipeflow.registry.aliases import AliasMove
    from pipeflow.registry.aliaslist import Alias, AliasReport, HistoryMove
    from pipeflow.registry.catalog import Model, ModelVersion
    from pipeflow.registry.notes import Noted
    from pipeflow.version import __version__


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'pipeflow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
