"""Modules: layers (own a state, reduce messages, apply an activation) and adapters (carry messages)."""

from darnax.modules.ferromagnetic import Ferromagnetic as Ferromagnetic
from darnax.modules.fully_connected import CEFullyConnected as CEFullyConnected
from darnax.modules.fully_connected import FrozenFullyConnected as FrozenFullyConnected
from darnax.modules.fully_connected import FrozenRescaledFullyConnected as FrozenRescaledFullyConnected
from darnax.modules.fully_connected import FullyConnected as FullyConnected
from darnax.modules.input_output import OutputLayer as OutputLayer
from darnax.modules.interfaces import AbstractModule as AbstractModule
from darnax.modules.interfaces import Adapter as Adapter
from darnax.modules.interfaces import Layer as Layer
from darnax.modules.interfaces import RecurrentSignLayer as RecurrentSignLayer
from darnax.modules.interfaces import SquareModule as SquareModule
from darnax.modules.recurrent import RecurrentDiscrete as RecurrentDiscrete
from darnax.modules.recurrent import SparseRecurrentDiscrete as SparseRecurrentDiscrete
from darnax.modules.sparse_fully_connected import SparseFullyConnected as SparseFullyConnected
