"""Legacy -> canonical mapping (pure): one module per bounded context, MessageML normalization, and the
pipeline the normalize agent calls (:func:`app.normalize.mapping.pipeline.normalize`)."""
