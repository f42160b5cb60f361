"""Normalize: one staging record -> canonical records or one dead letter (:mod:`.normalizer`); the legacy
-> canonical mapping, one module per bounded context (:mod:`.mapping`); CloudEvents headers
(:mod:`.cloudevents`); what the agent builds at start (:mod:`.runtime`); the replay commands
(:mod:`.replay`)."""
