"""A node: wires the chain, mempool and consensus together; config, home and replay."""

from citychain.node.config import NodeConfig as NodeConfig
from citychain.node.node import Node as Node
from citychain.node.node import Subscription as Subscription

__all__ = ["Node", "NodeConfig", "Subscription"]
