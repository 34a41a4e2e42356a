"""Chat models: one protocol, a registry, and the providers behind it."""

from playground.models.base import ChatModel, Message, ModelParams, Usage

__all__ = ["ChatModel", "Message", "ModelParams", "Usage"]
