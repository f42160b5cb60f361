"""Tenant keys and field encryption: AES-256-GCM (:mod:`.aead`), the keyring (:mod:`.keyring`) and key
providers (local key file :mod:`.keyfile`, AWS KMS envelope :mod:`.kms`)."""
