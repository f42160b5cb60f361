"""Legacy traffic simulation: a deterministic generator of legacy publications with their ground truth."""
