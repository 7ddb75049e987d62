"""The ``s5rf`` commands' own tests; those of a command that exercise its package's behaviour
live beside that package's (train and eval in tests/model, replay and listen in
tests/clients)."""

from tests.server.conftest import checkpoints  # noqa: F401  (the tiny checkpoints serve loads)
