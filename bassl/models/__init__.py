"""Shot encoder, contextual relation network (CRN), heads and the containers that hold them."""

from bassl.models.boundary_model import BoundaryModel, build_boundary_model
from bassl.models.crn import ContextualRelationNetwork
from bassl.models.encoder import ARCHS, ShotEncoder, build_encoder
from bassl.models.heads import MaskedShotHead, ProjectionHead
from bassl.models.pretrain_model import PretrainModel, build_pretrain_model, initial_pretrain_model

__all__ = [
    "ARCHS",
    "BoundaryModel",
    "ContextualRelationNetwork",
    "MaskedShotHead",
    "PretrainModel",
    "ProjectionHead",
    "ShotEncoder",
    "build_boundary_model",
    "build_encoder",
    "build_pretrain_model",
    "initial_pretrain_model",
]
