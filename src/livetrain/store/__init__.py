"""Persistence: metadata in a SQL database, artifacts as checksummed files."""

from livetrain.store.artifacts import ArtifactRef, ArtifactStore
from livetrain.store.entities import Dataset, Experiment, Network, NetworkVersion, Run, RunEvent, RunStatus, Token
from livetrain.store.metadata import MetadataStore

__all__ = [
    "ArtifactRef",
    "ArtifactStore",
    "Dataset",
    "Experiment",
    "MetadataStore",
    "Network",
    "NetworkVersion",
    "Run",
    "RunEvent",
    "RunStatus",
    "Token",
]
