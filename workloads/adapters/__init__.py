"""Queue adapters: our queue, other people's queues and plain sqlite3 behind one protocol.

:mod:`.base` is the protocol and the declaration types, :mod:`.specs` the built-in
declarations (no library imported), :mod:`.catalog` the contenders the comparison workload
runs. Write your own adapter as in the README's "Profiling your own queue: adapters".
"""

from .base import AdapterSpec, CodePath, Contender, Opener, QueueAdapter, adapter_methods

__all__ = ["AdapterSpec", "CodePath", "Contender", "Opener", "QueueAdapter", "adapter_methods"]
