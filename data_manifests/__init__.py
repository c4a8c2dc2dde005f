"""Dataset manifests (TOML), installed as the package ``eventkit.manifests``."""
