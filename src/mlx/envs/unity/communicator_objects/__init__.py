"""ML-Agents' wire protocol (communication version 1.5.0): mlx's own messages.proto and the code protoc made.

The messages_pb2*.py(i) files are generated: edit messages.proto beside them and run scripts/gen_protos.py.
The protobuf package is ``communicator_objects`` (as upstream), so the gRPC method path and every field
number match what a Unity build with the ML-Agents package sends. Importing this package next to
``mlagents_envs`` in one process fails: both would register the same message names.
"""
