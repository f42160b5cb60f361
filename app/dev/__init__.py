"""Development tools, apart from the product: the local stack (:mod:`.stack`: broker, moto, Pub/Sub
emulator, demo tenants, ``make run``) and the legacy traffic simulator (:mod:`.simulate`). Nothing under
``app/`` outside this package imports it, except the ``carryover`` command's dev subcommands, lazily."""
