"""bob_facerev: reversibility benchmark for privacy-protected face embeddings (Bob plugin)."""

__version__ = "0.1.0"
